-- Redis access: pooled, authenticated connections, and the route table as one snapshot.
local redis = require "resty.redis"
local config = require "config"

local _M = {}

-- A connection by name (nginx's resolver), from the pool when one is idle; AUTH only on
-- fresh sockets, since pooled ones were authenticated when they were opened.
function _M.connect()
    local red = redis:new()
    -- set_timeout (not set_timeouts): older lua-resty-redis (Debian's 0.27) lacks the latter,
    -- and its unknown methods become Redis commands.
    red:set_timeout(1000)
    -- /etc/hosts first (extra_hosts), else by name through nginx's resolver.
    local host = config.etc_hosts[config.redis_host] or config.redis_host
    local ok, err = red:connect(host, config.redis_port)
    if not ok then
        return nil, "connect " .. config.redis_host .. ":" .. config.redis_port .. ": " .. err
    end
    if config.password and red:get_reused_times() == 0 then
        local authed, aerr = red:auth(config.password)
        if not authed then
            red:close()
            return nil, "auth: " .. tostring(aerr)
        end
    end
    return red
end

function _M.release(red)
    red:set_keepalive(30000, 32)
end

-- The route table as text, one line per route: "prefix\tservice\tep1 ep2 ...". Text (not a
-- Lua table) because it goes into shared dicts; router.decode turns it back.
function _M.snapshot()
    local red, err = _M.connect()
    if not red then
        return nil, err
    end
    local flat, herr = red:hgetall("routes")
    if not flat then
        red:close()
        return nil, "hgetall routes: " .. tostring(herr)
    end
    local lists = {}
    if #flat > 0 then
        red:init_pipeline()
        for i = 2, #flat, 2 do
            red:lrange("service:" .. flat[i] .. ":endpoints", 0, -1)
        end
        lists, herr = red:commit_pipeline()
        if not lists then
            red:close()
            return nil, "lrange endpoints: " .. tostring(herr)
        end
    end
    _M.release(red)
    local lines = {}
    for i = 1, #flat, 2 do
        local eps = lists[(i + 1) / 2]
        eps = type(eps) == "table" and table.concat(eps, " ") or ""
        lines[#lines + 1] = flat[i] .. "\t" .. flat[i + 1] .. "\t" .. eps
    end
    return table.concat(lines, "\n")
end

return _M
