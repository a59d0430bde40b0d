-- Routing: path prefix -> service (longest prefix wins) -> endpoints (round robin, the ones
-- marked down skipped) -> peer; a peer that fails is marked down and the next one is tried.
local balancer = require "ngx.balancer"
local config = require "config"
local dns = require "dns"
local helpers = require "helpers"
local respond = require "respond"
local store = require "store"

local cache = ngx.shared.routes_cache
local stale = ngx.shared.routes_stale
local counters = ngx.shared.round_robin
local down = ngx.shared.endpoint_down  -- "ip:port" -> why, for config.endpoint_down_ttl

local _M = {}

-- Methods tried on the next endpoint when one fails: the idempotent ones. A POST or PATCH
-- may have been acted on before the connection broke.
local RETRY = { GET = true, HEAD = true, OPTIONS = true, PUT = true, DELETE = true }

-- Per worker: the decoded form of the last text seen, reused while the text is the same.
local memo_text, memo_table

function _M.decode(text)
    if text ~= memo_text then
        memo_text, memo_table = text, helpers.decode(text)
        memo_table.peers = {}
    end
    return memo_table
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
            if fresh then  -- the table first, then the lock: a waiter never sees neither
                cache:set("table", fresh, config.cache_ttl)
                stale:set("table", fresh)
                cache:delete("lock")
                return fresh
            end
            cache:delete("lock")
            ngx.log(ngx.WARN, "route table from Redis failed, serving the last one: ", err)
            cache:set("down", err or "error", config.down_ttl)
        else
            local last = stale:get("table")
            if last then
                return last
            end
            -- No table at all yet (a cold start): another request is reading Redis. Wait
            -- for its answer (bounded by its lock's life) rather than answer 503.
            for _ = 1, 100 do
                ngx.sleep(0.01)
                text = cache:get("table")
                if text then
                    return text
                end
                if cache:get("down") or not cache:get("lock") then
                    break
                end
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
    local text, source = load_shared()
    if text then  -- no table is not kept: the next request asks again
        worker_text, worker_source, worker_until = text, source, now + config.worker_ttl
    end
    return text, source
end

local function unescape(s)  -- %XX only: "+" is no space in a path
    return (s:gsub("%%(%x%x)", function(hex) return string.char(tonumber(hex, 16)) end))
end

-- The path nginx matched (ngx.var.uri: decoded, dot segments resolved) must be the path that
-- is forwarded (proxy_pass sends the request's raw URI). They differ only when the raw path
-- holds dot segments ("/api/../admin", "/api/%2e%2e/admin"), which would reach the /api
-- service with a path outside its prefix: refused, as is an encoded slash (a separator for
-- one side and not the other). merge_slashes is off (nginx.conf), so "//" stays as sent.
local function raw_path_ok(uri)
    local raw = ngx.var.request_uri
    local query = raw:find("?", 1, true)
    if query then
        raw = raw:sub(1, query - 1)
    end
    if raw == uri then  -- the common case: nothing encoded, nothing normalised
        return not raw:find("\\", 1, true)
    end
    if raw:find("%%2[fF]") or raw:find("%%5[cC]") or raw:find("\\", 1, true) then
        return false
    end
    return unescape(raw) == uri
end

-- Per worker: a peer ({ ip, port, name, "ip:port" }) per endpoint name and address, made
-- once and reused by every request while the name resolves to the same address (no table
-- and no string made per request for it). They are kept in the decoded table (t.peers), so
-- an endpoint that leaves the table leaves with it.
local function peer_of(t, endpoint, ip)
    local peer = t.peers[endpoint.name]
    if not peer or peer[1] ~= ip then
        peer = { ip, endpoint.port, endpoint.name, ip .. ":" .. endpoint.port }
        t.peers[endpoint.name] = peer
    end
    return peer
end

local function mark_down(addr, why)
    if addr and not down:get(addr) then
        ngx.log(ngx.WARN, "endpoint ", addr, " down for ", config.endpoint_down_ttl, " s: ", why)
    end
    if addr then
        down:set(addr, why or "failed", config.endpoint_down_ttl)
    end
end

-- access phase: pick the peers to try, or answer 400/404/502/503 JSON.
function _M.route()
    local path = ngx.var.uri
    if not raw_path_ok(path) then
        return respond.json(400, { error = "bad path" })
    end
    local text, source = load_table()
    if source then
        ngx.header["X-Route-Source"] = source
    end
    if not text then
        return respond.json(503, { error = "route table unavailable" })
    end
    local t = _M.decode(text)
    local service = helpers.match(t, path)
    if not service then
        return respond.json(404, { error = "no route", path = path })
    end
    local eps = t.endpoints[service]
    if not eps or #eps == 0 then
        return respond.json(503, { error = "no endpoint", service = service })
    end
    -- Round robin: start at the next endpoint, then the others in order; the ones marked
    -- down are left out while another is up.
    local n = counters:incr(service, 1, 0)
    local peers, unresolved, marked = {}, nil, 0
    for i = 0, #eps - 1 do
        local endpoint = eps[(n - 1 + i) % #eps + 1]
        local ip, err = dns.resolve(endpoint.host)
        if not ip then
            unresolved = unresolved or { endpoint = endpoint.name, detail = tostring(err) }
        else
            local peer = peer_of(t, endpoint, ip)
            if down:get(peer[4]) then
                marked = marked + 1
            else
                peers[#peers + 1] = peer
            end
        end
    end
    if #peers == 0 then
        if marked == 0 then  -- not one name resolved
            return respond.json(502, { error = "cannot resolve endpoint",
                                    endpoint = unresolved.endpoint, detail = unresolved.detail })
        end
        return respond.json(502, { error = "no endpoint up", service = service })
    end
    ngx.ctx.peers, ngx.ctx.try = peers, 0
end

-- balancer phase: the next peer route() chose. On a retry, the one before it failed (nginx
-- calls this again only on error or timeout: proxy_next_upstream in nginx.conf).
function _M.balance()
    local ctx = ngx.ctx
    local peers, try = ctx.peers, ctx.try + 1
    if try > 1 then
        local state, code = balancer.get_last_failure()
        mark_down(peers[try - 1][4], tostring(state) .. " " .. tostring(code))
    elseif #peers > 1 and RETRY[ngx.req.get_method()] then
        -- At most one try per endpoint in all.
        local ok, err = balancer.set_more_tries(#peers - 1)
        if not ok then
            ngx.log(ngx.ERR, "set_more_tries: ", err)
        end
    end
    local peer = peers[try]
    if not peer then  -- not reached: the tries are bounded by #peers
        return ngx.exit(502)
    end
    ctx.try = try
    -- The answer's X-Upstream-Endpoint (nginx.conf's add_header): the last peer tried is the
    -- one that answered. A variable set here costs less than a header filter of its own.
    ngx.var.upstream_endpoint = peer[3]
    local ok, err = balancer.set_current_peer(peer[1], peer[2])
    if not ok then
        ngx.log(ngx.ERR, "set_current_peer ", peer[4], ": ", err)
        return ngx.exit(502)
    end
end

-- The error page for 502/504 from the proxy itself (not an upstream's own 502, which is
-- passed on): the last peer tried failed too, and is marked down like the others. "Never
-- connected" answers 502 whatever nginx chose (a connect timeout is 504 there); a timeout
-- after connecting stays 504.
function _M.upstream_error()
    local addrs = ngx.var.upstream_addr or ""
    local last = addrs:match("([%d%.]+:%d+)%s*$")
    local connect_times = ngx.var.upstream_connect_time or ""
    local connected = (connect_times:match("([^,:%s]+)%s*$") or "-") ~= "-"
    local status = ngx.status
    if status ~= 504 or not connected then
        status = 502
    end
    mark_down(last, connected and "failed after connecting" or "no connection")
    return respond.json(status, {
        error = connected and "upstream failed" or "no endpoint answered",
        -- The service again from the path, best effort: ngx.ctx does not survive the error
        -- page, and a variable set for it on every request costs more than this lookup on
        -- failures. A table changed since the request was routed may name another service.
        service = worker_text and helpers.match(_M.decode(worker_text), ngx.var.uri) or "",
    })
end

return _M
