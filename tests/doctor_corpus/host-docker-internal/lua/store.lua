local _M = {}

function _M.connect(red)
    return red:connect("host.docker.internal", 6379)
end

return _M
