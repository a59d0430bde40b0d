-- Endpoint names -> IPv4 addresses through Docker's DNS, cached like the resolver's valid=.
-- ngx.balancer needs an address, and cosocket name resolution is not available there.
local config = require "config"

local found, resolver = pcall(require, "resty.dns.resolver")
if not found then
    resolver = require "nginx.dns.resolver"  -- Debian's name for lua-resty-dns
end

local cache = ngx.shared.dns_cache
local _M = {}

-- Per worker, for a second: most requests then need no shared dict read at all.
local memo, memo_until = {}, 0

function _M.is_ip(host)
    return host:match("^%d+%.%d+%.%d+%.%d+$") ~= nil
end

function _M.resolve(host)
    if _M.is_ip(host) then
        return host
    end
    if config.etc_hosts[host] then
        return config.etc_hosts[host]
    end
    local now = ngx.now()
    if now >= memo_until then
        memo, memo_until = {}, now + 1
    end
    local cached = memo[host] or cache:get(host)
    if cached then
        memo[host] = cached
        return cached
    end
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
            cache:set(host, answer.address, math.min(answer.ttl or config.dns_ttl, config.dns_ttl))
            return answer.address
        end
    end
    return nil, "no A record for " .. host
end

return _M
