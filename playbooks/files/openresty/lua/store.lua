-- Redis access: pooled, authenticated connections, and the route table as one snapshot.
local redis = require "resty.redis"
local cluster = require "cluster"
local config = require "config"

local _M = {}

-- A connection by name (nginx's resolver), from the pool when one is idle; AUTH only on
-- fresh sockets, since pooled ones were authenticated when they were opened. `fresh`: skip
-- (and close) the idle pooled sockets, which are suspect once one of them failed.
local function connect(name, port, fresh)
    -- /etc/hosts first (extra_hosts), else by name through nginx's resolver.
    local host = config.etc_hosts[name] or name
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
        local host, port = ep:match("^(.+):(%d+)$")
        local pong, err = run_on(host, tonumber(port), function(red)
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
        if asking then
            red:asking()
        end
        local res, err = red[command](red, unpack(args))
        if res == nil then
            return nil, command .. ": " .. tostring(err), true
        elseif res == false then
            return nil, command .. ": " .. tostring(err), false
        end
        return res
    end)
end

-- What the route table may hold: the same rules as provision/cluster/routes.py. An entry
-- written straight into Redis that breaks them is skipped here, so that no request meets it.
local function valid_prefix(p)
    if type(p) ~= "string" or not p:match("^/[%w%._~!%$&'%(%)%*%+,;=:@%%/%-]*$") then
        return false
    end
    local q = p .. "/"
    return not (q:find("/../", 1, true) or q:find("/./", 1, true) or p:find("//", 1, true))
end

local function valid_service(s)
    return type(s) == "string" and #s <= 63 and s:match("^[%w][%w_%.%-]*$") ~= nil
end

local function valid_host(host)
    if #host == 0 or #host > 253 then
        return false
    end
    -- The rule of provision.cluster.routes.validate_endpoint, the same corpus tested on both
    -- (tests/helpers.py, ENDPOINTS_REFUSED). A resolver reads a name made of numbers as an
    -- address (inet_aton: 127.1, 2852039166, 0x7f000001, 010 in octal): only the plain
    -- four-part form is taken, each part 0-255 without a leading zero.
    if host:lower():match("^0x[%x%.x]*$") then
        return false
    end
    if host:match("^[%d%.]+$") then  -- numbers and dots: an IPv4 address or nothing
        local parts = { host:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$") }
        if #parts ~= 4 then
            return false
        end
        for _, part in ipairs(parts) do
            if tonumber(part) > 255 or (#part > 1 and part:sub(1, 1) == "0") then
                return false
            end
        end
        return true
    end
    for label in (host .. "."):gmatch("([^.]*)%.") do
        if #label == 0 or #label > 63 or not label:match("^[%w][%w%-]*$")
            or label:sub(-1) == "-" then
            return false
        end
    end
    return true
end

-- "host:port", port 1 to 65535.
function _M.valid_endpoint(ep)
    if type(ep) ~= "string" then
        return false
    end
    local host, port = ep:match("^(.+):(%d%d?%d?%d?%d?)$")
    port = tonumber(port)
    return host ~= nil and port >= 1 and port <= 65535 and valid_host(host)
end

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
    if asking then
        red:asking()
    end
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
            if asking then
                red:asking()
            end
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
                    if _M.valid_endpoint(ep) then
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
