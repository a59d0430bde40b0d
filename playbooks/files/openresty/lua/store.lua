-- Redis access: pooled, authenticated connections, and the route table as one snapshot.
local redis = require "resty.redis"
local cluster = require "cluster"
local config = require "config"
local dns = require "dns"
local helpers = require "helpers"

local _M = {}

-- A connection by name (resolved by dns.lua), from the pool when one is idle; AUTH only on
-- fresh sockets, since pooled ones were authenticated when they were opened. `fresh`: skip
-- (and close) the idle pooled sockets, which are suspect once one of them failed.
local function connect(name, port, fresh)
    -- By address: dns.lua resolves (/etc/hosts first, for extra_hosts), with the one
    -- resolver the router uses (config.resolver), so nginx.conf sets none.
    local host, derr = dns.resolve(name)
    if not host then
        return nil, "connect " .. name .. ":" .. port .. ": " .. tostring(derr)
    end
    for _ = 0, config.redis_pool_size do
        local red = redis:new()
        -- set_timeout (not set_timeouts): older lua-resty-redis (Debian's 0.27) lacks the
        -- latter, and its unknown methods become Redis commands.
        red:set_timeout(config.redis_timeout_ms)
        local ok, err = red:connect(host, port)
        if not ok then
            return nil, "connect " .. name .. ":" .. port .. ": " .. err
        end
        local reused = red:get_reused_times() > 0
        if not reused then
            if config.password then
                local authed, aerr = red:auth(config.password)
                if not authed then
                    red:close()
                    return nil, "auth: " .. tostring(aerr)
                end
            end
            return red, nil, false
        end
        if not fresh then
            return red, nil, true
        end
        red:close()
    end
    return nil, "no fresh connection to " .. name .. ":" .. port
end

-- Back to the pool: closed by nginx after config.redis_idle_ms idle (see config.lua for why
-- that number).
local function release(red)
    local ok, err = red:set_keepalive(config.redis_idle_ms, config.redis_pool_size)
    if not ok then
        ngx.log(ngx.INFO, "redis set_keepalive: ", err)
    end
end

-- Run fn(red) on a pooled connection to name:port. fn returns a value, or nil, err, broken:
-- `broken` when the socket failed (lua-resty-redis returns nil for socket errors, false for
-- Redis error replies); a failed connect is broken too. The first socket failure on a pooled
-- (reused) connection is retried once on a fresh one: an idle connection may have been
-- dropped on the way without either end knowing (a NAT or IPVS idle timeout, a Redis that
-- restarted behind a proxy).
local function run_on(name, port, fn)
    local fresh = false
    while true do
        local red, err, reused = connect(name, port, fresh)
        if not red then
            return nil, err, true
        end
        local value, ferr, broken = fn(red)
        if value ~= nil then
            release(red)
            return value
        end
        if not broken then  -- a Redis error reply: the connection itself is fine
            release(red)
            return nil, ferr
        end
        red:close()
        if not reused or fresh then
            return nil, ferr
        end
        ngx.log(ngx.INFO, "pooled redis connection failed (", ferr, "), retrying on a fresh one")
        fresh = true
    end
end

-- Run fn(red, asking) where the route table lives: the one Redis, or the Redis Cluster node
-- that serves the route table's slot (cluster.lua follows redirects and failovers). With
-- `asking` (after an ASK redirect), fn sends ASKING ahead of each command.
function _M.run(fn)
    if #config.redis_nodes > 0 then
        return cluster.run(run_on, fn)
    end
    return run_on(config.redis_host, config.redis_port, function(red)
        return fn(red, false)
    end)
end

-- A route table key: with the hash tag in cluster mode ("{provision}:routes").
function _M.key(name)
    return config.key_prefix .. name
end

-- PING every node (Redis Cluster) or the one Redis: { { node = "host:port", reply = "PONG"
-- or nil, error = text or nil }, ... }
function _M.ping_all()
    local nodes = config.redis_nodes
    if #nodes == 0 then
        nodes = { config.redis_host .. ":" .. config.redis_port }
    end
    local results = {}
    for i, ep in ipairs(nodes) do
        local host, port = helpers.split_endpoint(ep)
        local pong, err = run_on(host, port, function(red)
            local res, perr = red:ping()
            if not res then
                return nil, "ping: " .. tostring(perr), res == nil
            end
            return res
        end)
        results[i] = { node = ep, reply = pong, error = err and tostring(err) or nil }
    end
    return results
end

-- One command through run(): a Redis error reply (false, err) is an error, not a retry.
function _M.call(command, ...)
    local args = { ... }
    return _M.run(function(red, asking)
        helpers.asking(red, asking)
        local res, err = red[command](red, unpack(args))
        if res == nil then
            return nil, command .. ": " .. tostring(err), true
        elseif res == false then
            return nil, command .. ": " .. tostring(err), false
        end
        return res
    end)
end

-- What the route table may hold: helpers.lua's rules, the same as
-- provision/cluster/routes.py (one corpus tests both). An entry written straight into Redis
-- that breaks them is skipped here, so that no request meets it.
local valid_prefix, valid_service = helpers.valid_prefix, helpers.valid_service
local valid_endpoint = helpers.valid_endpoint

-- Skipped entries are logged when they change, not at every refresh.
local last_skipped = ""

local function log_skipped(skipped)
    local text = table.concat(skipped, "; ")
    if text ~= last_skipped and text ~= "" then
        ngx.log(ngx.WARN, "route table: skipped ", text)
    end
    last_skipped = text
end

-- The route table as text, one line per route: "prefix\tservice\tep1 ep2 ...". Text (not a
-- Lua table) because it goes into shared dicts; router.decode turns it back. Only valid
-- entries are in it (none holds a tab, a newline or a space), except that a route whose
-- service name is bad stays, escaped and without endpoints: its paths answer 503, rather than
-- fall through to a shorter prefix.
local function read_table(red, asking)
    helpers.asking(red, asking)
    local flat, err = red:hgetall(_M.key("routes"))
    if not flat then
        return nil, "hgetall routes: " .. tostring(err), flat == nil
    end
    local routes, skipped, wanted = {}, {}, {}
    for i = 1, #flat - 1, 2 do
        local prefix, service = flat[i], flat[i + 1]
        if not valid_prefix(prefix) then
            skipped[#skipped + 1] = "prefix " .. ngx.escape_uri(tostring(prefix))
        elseif not valid_service(service) then
            skipped[#skipped + 1] = "service " .. ngx.escape_uri(tostring(service))
            routes[#routes + 1] = { prefix, ngx.escape_uri(tostring(service)) }
        else
            routes[#routes + 1] = { prefix, service }
            if not wanted[service] then
                wanted[#wanted + 1] = service
                wanted[service] = true
            end
        end
    end
    local lists = {}
    if #wanted > 0 then
        -- After an ASK redirect, ASKING goes ahead of each LRANGE: two replies each.
        local step = asking and 2 or 1
        red:init_pipeline(#wanted * step)
        for _, service in ipairs(wanted) do
            helpers.asking(red, asking)
            red:lrange(_M.key("service:" .. service .. ":endpoints"), 0, -1)
        end
        local replies, perr = red:commit_pipeline()
        if not replies then
            return nil, "lrange endpoints: " .. tostring(perr), true
        end
        for i, service in ipairs(wanted) do
            local eps, reply = {}, replies[i * step]
            if type(reply) == "table" and reply[1] ~= false then
                for _, ep in ipairs(reply) do
                    if valid_endpoint(ep) then
                        eps[#eps + 1] = ep
                    else
                        skipped[#skipped + 1] = "endpoint " .. ngx.escape_uri(tostring(ep))
                            .. " of " .. service
                    end
                end
            else  -- e.g. WRONGTYPE: the key is not a list
                skipped[#skipped + 1] = "endpoints of " .. service .. ": "
                    .. tostring(type(reply) == "table" and reply[2] or reply)
            end
            lists[service] = table.concat(eps, " ")
        end
    end
    log_skipped(skipped)
    local lines = {}
    for i, route in ipairs(routes) do
        lines[i] = route[1] .. "\t" .. route[2] .. "\t" .. (lists[route[2]] or "")
    end
    return table.concat(lines, "\n")
end

function _M.snapshot()
    return _M.run(read_table)
end

return _M
