-- Routing: path prefix -> service (longest prefix wins) -> endpoint (round robin) -> peer.
local balancer = require "ngx.balancer"
local config = require "config"
local dns = require "dns"
local json = require "json"
local store = require "store"

local cache = ngx.shared.routes_cache
local stale = ngx.shared.routes_stale
local counters = ngx.shared.round_robin

local _M = {}

-- Per worker: the decoded form of the last text seen, reused while the text is the same.
local memo_text, memo_table

function _M.decode(text)
    if text == memo_text then
        return memo_table
    end
    local t = { prefixes = {}, services = {}, endpoints = {} }
    for line in text:gmatch("[^\n]+") do
        local prefix, service, eps = line:match("^([^\t]*)\t([^\t]*)\t?(.*)$")
        if prefix then
            t.prefixes[#t.prefixes + 1] = prefix
            t.services[prefix] = service
            local list = {}
            for ep in eps:gmatch("%S+") do
                local host, port = ep:match("^(.-):(%d+)$")
                list[#list + 1] = { name = ep, host = host or ep, port = tonumber(port) or 80 }
            end
            t.endpoints[service] = list
        end
    end
    table.sort(t.prefixes, function(a, b) return #a > #b end)
    memo_text, memo_table = text, t
    return t
end

-- The route table text, and "stale-cache" when it is the last known one because Redis failed.
local function load_shared()
    local text = cache:get("table")
    if text then
        return text
    end
    if not cache:get("down") then
        -- One refresh at a time across workers; the others serve the table it replaces.
        if cache:add("lock", true, 1) then
            local fresh, err = store.snapshot()
            cache:delete("lock")
            if fresh then
                cache:set("table", fresh, config.cache_ttl)
                stale:set("table", fresh)
                return fresh
            end
            ngx.log(ngx.WARN, "route table from Redis failed, serving the last one: ", err)
            cache:set("down", err or "error", config.down_ttl)
        else
            local last = stale:get("table")
            if last then
                return last
            end
        end
    end
    return stale:get("table"), "stale-cache"
end

-- Each worker keeps what load_shared() gave for a second, so that a request costs no shared
-- dict read (and no copy of the table text): a change reaches every worker within
-- cache_ttl + worker_ttl seconds.
local worker_text, worker_source, worker_until = nil, nil, 0

local function load_table()
    local now = ngx.now()
    if now < worker_until then
        return worker_text, worker_source
    end
    worker_text, worker_source = load_shared()
    worker_until = now + config.worker_ttl
    return worker_text, worker_source
end

local function match(t, path)
    for _, prefix in ipairs(t.prefixes) do
        if path == prefix or (path:sub(1, #prefix) == prefix
            and (prefix:sub(-1) == "/" or path:sub(#prefix + 1, #prefix + 1) == "/")) then
            return t.services[prefix]
        end
    end
end

-- access phase: pick the peer, or answer 404/503 JSON.
function _M.route()
    local text, source = load_table()
    if source then
        ngx.header["X-Route-Source"] = source
    end
    if not text then
        return json.send(503, { error = "route table unavailable" })
    end
    local t = _M.decode(text)
    local path = ngx.var.uri
    local service = match(t, path)
    if not service then
        return json.send(404, { error = "no route", path = path })
    end
    local eps = t.endpoints[service]
    if not eps or #eps == 0 then
        return json.send(503, { error = "no endpoint", service = service })
    end
    local n = counters:incr(service, 1, 0)
    local endpoint = eps[(n - 1) % #eps + 1]
    local ip, err = dns.resolve(endpoint.host)
    if not ip then
        return json.send(502, { error = "cannot resolve endpoint", endpoint = endpoint.name,
                                detail = tostring(err) })
    end
    ngx.ctx.peer = { ip, endpoint.port }
end

-- balancer phase: the peer route() chose.
function _M.balance()
    local peer = ngx.ctx.peer
    local ok, err = balancer.set_current_peer(peer[1], peer[2])
    if not ok then
        ngx.log(ngx.ERR, "set_current_peer ", peer[1], ":", peer[2], ": ", err)
        return ngx.exit(502)
    end
end

return _M
