-- Settings, read once by init_by_lua in nginx's master (as root, so it can read the secret
-- file) and inherited by every worker when they fork.
local _M = {
    redis_host = "redis",
    redis_port = 6379,
    -- redis_mode: cluster: the nodes to start from ({ "redis-1:6379", ... }, REDIS_NODES)
    -- and the hash tag every route table key starts with ("{provision}:", REDIS_KEY_PREFIX);
    -- empty with one Redis.
    redis_nodes = {},
    key_prefix = "",
    password = nil,
    etc_hosts = {},           -- name -> IPv4 address, from /etc/hosts
    resolver = "127.0.0.11",  -- Docker's embedded DNS (DNS_RESOLVER): the router's one resolver
    cache_ttl = 2,            -- seconds a route table from Redis is used without asking again
    worker_ttl = 1,           -- seconds a worker reuses what it read from the shared dicts
    down_ttl = 1,             -- seconds to stop asking a Redis that just failed
    dns_ttl = 10,             -- like the resolver's valid=10s
    dns_negative_ttl = 2,     -- seconds a name that did not resolve is not asked again
    -- Passive health (as hipache did): an endpoint whose connection failed or timed out is
    -- skipped for this many seconds while another endpoint of its service is up.
    endpoint_down_ttl = 3,
    -- Redis connections go back to a per-worker pool and are closed after this idle time:
    -- well under the idle limits of what may sit between OpenResty and Redis and drop an
    -- idle connection without telling either side (IPVS, e.g. Docker Swarm's service VIPs:
    -- 900 s; an AWS NAT gateway: 350 s). A pooled socket that fails anyway is retried
    -- once on a fresh connection (store.lua).
    redis_idle_ms = 30000,
    redis_pool_size = 32,
    redis_timeout_ms = 1000,  -- connect, send and read, each
}

-- Cosockets and the resolver ignore /etc/hosts, where Docker writes extra_hosts entries
-- (host.docker.internal); its embedded DNS does not serve them. So read it once here.
local function read_hosts(path)
    local hosts = {}
    local fh = io.open(path, "r")
    if not fh then
        return hosts
    end
    for line in fh:lines() do
        local ip, names = line:match("^%s*(%d+%.%d+%.%d+%.%d+)%s+([^#]+)")
        for name in (names or ""):gmatch("%S+") do
            hosts[name] = hosts[name] or ip
        end
    end
    fh:close()
    return hosts
end

local function read_password(path)
    local fh = io.open(path, "r")
    if not fh then
        return nil
    end
    local text = fh:read("*a")
    fh:close()
    return text:match("REDIS_PASSWORD=([^\r\n]+)")
end

function _M.init()
    _M.redis_host = os.getenv("REDIS_HOST") or _M.redis_host
    -- ROUTES_CACHE_TTL: seconds a table read from Redis is used before asking again (a
    -- router whose table changes rarely may keep it longer; the bench's "table cached" rung).
    _M.cache_ttl = tonumber(os.getenv("ROUTES_CACHE_TTL") or "") or _M.cache_ttl
    _M.redis_port = tonumber(os.getenv("REDIS_PORT") or "") or _M.redis_port
    _M.resolver = os.getenv("DNS_RESOLVER") or _M.resolver
    _M.redis_nodes = {}
    for node in (os.getenv("REDIS_NODES") or ""):gmatch("[^,%s]+") do
        if node:match("^[%w][%w%.%-]*:%d+$") then
            _M.redis_nodes[#_M.redis_nodes + 1] = node
        else
            ngx.log(ngx.WARN, "REDIS_NODES: skipped ", node, " (not name:port)")
        end
    end
    _M.key_prefix = os.getenv("REDIS_KEY_PREFIX") or ""
    _M.etc_hosts = read_hosts("/etc/hosts")
    _M.password = os.getenv("REDIS_PASSWORD")
        or read_password(os.getenv("REDIS_PASSWORD_FILE") or "/run/secrets/redis_env")
    if not _M.password then
        ngx.log(ngx.WARN, "no Redis password (REDIS_PASSWORD or REDIS_PASSWORD_FILE)")
    end
end

return _M
