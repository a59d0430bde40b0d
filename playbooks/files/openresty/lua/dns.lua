-- Endpoint names -> IPv4 addresses through Docker's DNS, cached like the resolver's valid=.
-- ngx.balancer needs an address, and cosocket name resolution is not available there.
local config = require "config"
local helpers = require "helpers"

local found, resolver = pcall(require, "resty.dns.resolver")
if not found then
    resolver = require "nginx.dns.resolver"  -- Debian's name for lua-resty-dns
end

local cache = ngx.shared.dns_cache
local _M = {}

-- Per worker, for a second: most requests then need no shared dict read at all.
local memo, memo_until = {}, 0

-- A failure is cached too (as "!" .. reason, for config.dns_negative_ttl): a stopped
-- container's name is gone from Docker's DNS, which may then ask the host's resolvers; each
-- request naming it would otherwise wait for that again.
local function lookup(host)
    local r, err = resolver:new({ nameservers = { config.resolver }, retrans = 2, timeout = 1000 })
    if not r then
        return nil, err
    end
    local answers, qerr = r:query(host, { qtype = r.TYPE_A })
    if not answers then
        return nil, qerr
    end
    if answers.errcode then
        return nil, answers.errstr
    end
    for _, answer in ipairs(answers) do
        if answer.address then
            -- At least a second: a TTL of 0 (some resolvers give it) would be a shared dict
            -- entry that never expires, and the name would never be asked again.
            local ttl = math.min(answer.ttl or config.dns_ttl, config.dns_ttl)
            return answer.address, nil, math.max(1, ttl)
        end
    end
    return nil, "no A record for " .. host
end

function _M.resolve(host)
    local now = ngx.now()
    if now >= memo_until then
        memo, memo_until = {}, now + 1
    end
    local cached = memo[host]  -- the hot path: one table read per endpoint and request
    if cached then
        if cached:byte(1) == 33 then  -- "!": a failure, cached
            return nil, cached:sub(2)
        end
        return cached
    end
    if helpers.is_ipv4(host) then
        memo[host] = host
        return host
    end
    if config.etc_hosts[host] then
        memo[host] = config.etc_hosts[host]
        return config.etc_hosts[host]
    end
    cached = cache:get(host)
    if not cached then
        local address, err, ttl = lookup(host)
        cached = address or ("!" .. tostring(err))
        cache:set(host, cached, address and ttl or config.dns_negative_ttl)
    end
    memo[host] = cached
    if cached:sub(1, 1) == "!" then
        return nil, cached:sub(2)
    end
    return cached
end

return _M
