-- /health on the public port: only whether Redis answers ({"status":"ok"|"degraded"});
-- /health on the status port (127.0.0.1:8081 inside the container, not published): the
-- details (where the Redis name points, the error, the resolver, the route count);
-- /ping: Redis PING over a connection by name, as the seed did ("PONG"); every node of a
-- Redis Cluster.
local config = require "config"
local dns = require "dns"
local respond = require "respond"
local router = require "router"
local store = require "store"

local _M = {}

local function stale_count()
    local text = ngx.shared.routes_stale:get("table")
    return text and #router.decode(text).prefixes or 0
end

-- Always 200: the router serves the last route table while Redis is down, so it stays in
-- service (the container health check curls this); `status` says whether Redis answers.
function _M.health()
    local pong = store.call("ping")
    return respond.json(200, { status = pong == "PONG" and "ok" or "degraded" })
end

function _M.details()
    local address, derr = dns.resolve(config.redis_host)
    local pong, err = store.call("ping")
    local reachable = pong == "PONG"
    local routes, source = stale_count(), "stale-cache"
    if reachable then
        local n = store.call("hlen", store.key("routes"))
        if type(n) == "number" then
            routes, source = n, "redis"
        end
    end
    return respond.json(200, {
        status = reachable and "ok" or "degraded",
        redis = { host = config.redis_host, port = config.redis_port, reachable = reachable,
                  address = address or "", error = tostring(err or derr or "") },
        resolver = config.resolver,
        nodes = #config.redis_nodes > 0 and store.ping_all() or nil,
        routes = routes,
        routes_source = source,
    })
end

-- With a Redis Cluster, every node (REDIS_NODES) by its name: PONG when all answer.
function _M.ping()
    local failed = {}
    for _, result in ipairs(store.ping_all()) do
        if result.reply ~= "PONG" then
            failed[#failed + 1] = result.node .. ": " .. tostring(result.error or result.reply)
        end
    end
    ngx.header["Content-Type"] = "text/plain"
    if #failed > 0 then
        ngx.status = 502
        ngx.say("ERR ", table.concat(failed, "; "))
        return ngx.exit(502)
    end
    ngx.say("PONG")
end

return _M
