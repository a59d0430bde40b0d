-- What the router's modules share, pure (no ngx, no socket: tested on its own with busted,
-- tests/lua/): the route entries' rules, the route table's text form, the "host:port" split,
-- IPv4 addresses, Redis Cluster's key slots and redirects.
local bit = require "bit"

local _M = {}

-- "host:port" -> host, port (a number); nil when it is not that form.
function _M.split_endpoint(ep)
    if type(ep) ~= "string" then
        return nil
    end
    local host, port = ep:match("^(.+):(%d%d?%d?%d?%d?)$")
    return host, tonumber(port)
end

-- An IPv4 address in its plain four-part form, each part 0-255 without a leading zero. A
-- resolver reads other names made of numbers as addresses too (inet_aton: 127.1, 2852039166,
-- 0x7f000001, 010 in octal): those are no address here, and no valid name either.
function _M.is_ipv4(host)
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

-- The route entries' rules: the same as provision/cluster/routes.py, both tested against one
-- corpus (tests/route_corpus.json). An entry written straight into Redis that breaks them is
-- skipped by the router (store.lua), so that no request meets it.
function _M.valid_prefix(p)
    if type(p) ~= "string" or not p:match("^/[%w%._~!%$&'%(%)%*%+,;=:@%%/%-]*$") then
        return false
    end
    local q = p .. "/"
    return not (q:find("/../", 1, true) or q:find("/./", 1, true) or p:find("//", 1, true))
end

function _M.valid_service(s)
    return type(s) == "string" and #s <= 63 and s:match("^[%w][%w_%.%-]*$") ~= nil
end

function _M.valid_host(host)
    if type(host) ~= "string" or #host == 0 or #host > 253 then
        return false
    end
    if host:lower():match("^0x[%x%.x]*$") then
        return false
    end
    if host:match("^[%d%.]+$") then  -- numbers and dots: an IPv4 address or nothing
        return _M.is_ipv4(host)
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
    local host, port = _M.split_endpoint(ep)
    return host ~= nil and port >= 1 and port <= 65535 and _M.valid_host(host)
end

-- The route table's text form (store.lua writes it, one line per route:
-- "prefix\tservice\tep1 ep2 ...") -> { prefixes = { longest first }, services = { prefix ->
-- service }, endpoints = { service -> { { name, host, port }, ... } } }. Endpoints are checked
-- again: the stale copy may come from an older router.
function _M.decode(text)
    local t = { prefixes = {}, services = {}, endpoints = {} }
    for line in text:gmatch("[^\n]+") do
        local prefix, service, eps = line:match("^([^\t]*)\t([^\t]*)\t?(.*)$")
        if prefix then
            t.prefixes[#t.prefixes + 1] = prefix
            t.services[prefix] = service
            local list = {}
            for ep in eps:gmatch("%S+") do
                if _M.valid_endpoint(ep) then
                    local host, port = _M.split_endpoint(ep)
                    list[#list + 1] = { name = ep, host = host, port = port }
                end
            end
            t.endpoints[service] = list
        end
    end
    table.sort(t.prefixes, function(a, b)
        return #a > #b or (#a == #b and a < b)
    end)
    return t
end

-- The service of the longest prefix that `path` is under ("/api" takes "/api" and "/api/x",
-- not "/apix"; "/api/" takes what starts with it), or nil.
function _M.match(t, path)
    for _, prefix in ipairs(t.prefixes) do
        if path == prefix or (path:sub(1, #prefix) == prefix
            and (prefix:sub(-1) == "/" or path:sub(#prefix + 1, #prefix + 1) == "/")) then
            return t.services[prefix]
        end
    end
end

-- A Redis Cluster redirect in an error (the reply, or a message that quotes it):
-- "MOVED 3999 10.0.0.5:6379" -> "MOVED", "10.0.0.5:6379", 3999; "ASK ..." likewise; nil for
-- anything else.
function _M.redirect(err)
    local text = tostring(err)
    for _, kind in ipairs({ "MOVED", "ASK" }) do
        local slot, target = text:match("%f[%w]" .. kind .. " (%d+) (%S+)")
        if slot then
            return kind, target, tonumber(slot)
        end
    end
    return nil
end

-- After an ASK redirect, ASKING goes ahead of each command sent to the node it named.
function _M.asking(red, asking)
    if asking then
        red:asking()
    end
end

-- CRC16-CCITT (XMODEM), as Redis Cluster hashes keys.
local function crc16(s)
    local crc = 0
    for i = 1, #s do
        crc = bit.bxor(crc, bit.lshift(s:byte(i), 8))
        for _ = 1, 8 do
            if bit.band(crc, 0x8000) ~= 0 then
                crc = bit.band(bit.bxor(bit.lshift(crc, 1), 0x1021), 0xffff)
            else
                crc = bit.band(bit.lshift(crc, 1), 0xffff)
            end
        end
    end
    return crc
end

-- The slot of `key` (0-16383): of its hash tag, the part between the first "{" and the next
-- "}", when that part is not empty; else of the whole key.
function _M.key_slot(key)
    local open = key:find("{", 1, true)
    if open then
        local close = key:find("}", open + 1, true)
        if close and close > open + 1 then
            key = key:sub(open + 1, close - 1)
        end
    end
    return crc16(key) % 16384
end

return _M
