local redis = require "resty.redis"
local _M = {}
-- red:connect("127.0.0.1", 6379) in a comment is not a finding
local host = os.getenv("REDIS_HOST") or "localhost"

function _M.get()
    local red = redis:new()
    return red:connect(host, 6379)
end

return _M
