-- /health (JSON: can Redis be reached by name, where does the name point, how many routes)
-- and /ping (Redis PING over a connection by name, as the seed did: "PONG").
local config = require "config"
local dns = require "dns"
local json = require "json"
local router = require "router"
local store = require "store"

local _M = {}

local function route_count(red)
    if red then
        local n = red:hlen("routes")
        if type(n) == "number" then
            return n, "redis"
        end
    end
    local text = ngx.shared.routes_stale:get("table")
    return text and #router.decode(text).prefixes or 0, "stale-cache"
end

function _M.health()
    local address, derr = dns.resolve(config.redis_host)
    local red, err = store.connect()
    local reachable = false
    if red then
        local pong, perr = red:ping()
        reachable, err = pong == "PONG", perr
    end
    local routes, source = route_count(reachable and red or nil)
    if red and reachable then
        store.release(red)
    elseif red then
        red:close()
    end
    return json.send(200, {
        status = reachable and "ok" or "degraded",
        redis = { host = config.redis_host, port = config.redis_port, reachable = reachable,
                  address = address or "", error = tostring(err or derr or "") },
        resolver = config.resolver,
        routes = routes,
        routes_source = source,
    })
end

function _M.ping()
    local red, err = store.connect()
    local pong
    if red then
        pong, err = red:ping()
        store.release(red)
    end
    if pong ~= "PONG" then
        ngx.status = 502
        ngx.header["Content-Type"] = "text/plain"
        ngx.say("ERR ", tostring(err))
        return ngx.exit(502)
    end
    ngx.header["Content-Type"] = "text/plain"
    ngx.say("PONG")
end

return _M
