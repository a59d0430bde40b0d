-- The router's pure functions (playbooks/files/openresty/lua/helpers.lua), under LuaJIT as
-- nginx runs them: `busted --lua=luajit tests/lua` (tests/unit/test_lua.py runs it).
local cjson = require "cjson"
local helpers = require "helpers"

local function read(path)
    local fh = assert(io.open(path, "r"))
    local text = fh:read("*a")
    fh:close()
    return text
end

local corpus = cjson.decode(read("tests/route_corpus.json"))

describe("the route entries' rules, on the corpus routes.py is tested on", function()
    for _, p in ipairs(corpus.prefixes.valid) do
        it("takes the prefix " .. p, function() assert.is_true(helpers.valid_prefix(p)) end)
    end
    for _, p in ipairs(corpus.prefixes.invalid) do
        it("refuses the prefix " .. ("%q"):format(p), function()
            assert.is_false(helpers.valid_prefix(p))
        end)
    end
    for _, s in ipairs(corpus.services.valid) do
        it("takes the service " .. s, function() assert.is_true(helpers.valid_service(s)) end)
    end
    for _, s in ipairs(corpus.services.invalid) do
        it("refuses the service " .. ("%q"):format(s), function()
            assert.is_false(helpers.valid_service(s))
        end)
    end
    for _, kind in ipairs({ "valid", "local" }) do  -- local ones: the CLI's policy, not a rule
        for _, ep in ipairs(corpus.endpoints[kind]) do
            it("takes the endpoint " .. ep, function()
                assert.is_true(helpers.valid_endpoint(ep))
            end)
        end
    end
    for _, ep in ipairs(corpus.endpoints.invalid) do
        it("refuses the endpoint " .. ("%q"):format(ep), function()
            assert.is_false(helpers.valid_endpoint(ep))
        end)
    end
end)

describe("split_endpoint", function()
    it("splits host and port, the port a number", function()
        assert.same({ "echo-a", 80 }, { helpers.split_endpoint("echo-a:80") })
        assert.same({ "10.0.0.1", 6379 }, { helpers.split_endpoint("10.0.0.1:6379") })
    end)
    it("gives nothing for what is not host:port", function()
        for _, bad in ipairs({ "echo", "echo:", ":80", "h:123456", "h:8a" }) do
            assert.is_nil((helpers.split_endpoint(bad)), bad)
        end
        assert.is_nil((helpers.split_endpoint(nil)))
    end)
end)

describe("is_ipv4", function()
    it("takes the plain four-part form", function()
        for _, ip in ipairs({ "0.0.0.0", "10.0.0.1", "255.255.255.255" }) do
            assert.is_true(helpers.is_ipv4(ip), ip)
        end
    end)
    it("refuses what a resolver would read otherwise", function()
        for _, bad in ipairs({ "127.1", "010.0.0.1", "256.0.0.1", "1.2.3.4.5", "a.b.c.d", "" }) do
            assert.is_false(helpers.is_ipv4(bad), bad)
        end
    end)
end)

describe("decode", function()
    local text = "/api\tusers\tusers-a:80 bad_host:80 users-b:8080\n"
        .. "/\tfront\tfront:80\n"
        .. "/api/admin\tadmin\t\n"
    local t = helpers.decode(text)
    it("orders the prefixes longest first", function()
        assert.same({ "/api/admin", "/api", "/" }, t.prefixes)
    end)
    it("maps prefixes to services and services to checked endpoints", function()
        assert.equal("users", t.services["/api"])
        assert.same({ { name = "users-a:80", host = "users-a", port = 80 },
                      { name = "users-b:8080", host = "users-b", port = 8080 } }, t.endpoints.users)
        assert.same({}, t.endpoints.admin)
    end)
    it("reads an empty table", function()
        assert.same({ prefixes = {}, services = {}, endpoints = {} }, helpers.decode(""))
    end)
end)

describe("match", function()
    local t = helpers.decode("/api\tapi\ta:1\n/api/v2/\tv2\tb:1\n/\troot\tc:1\n")
    it("takes the longest prefix a path is under, at a segment boundary", function()
        assert.equal("api", helpers.match(t, "/api"))
        assert.equal("api", helpers.match(t, "/api/users"))
        assert.equal("root", helpers.match(t, "/apix"))
        assert.equal("v2", helpers.match(t, "/api/v2/x"))
        assert.equal("api", helpers.match(t, "/api/v2"))
    end)
    it("gives nil when no prefix holds the path", function()
        assert.is_nil(helpers.match(helpers.decode("/api\tapi\ta:1\n"), "/other"))
    end)
end)

describe("redirect", function()
    it("reads MOVED and ASK, also inside a longer message", function()
        assert.same({ "MOVED", "redis-3:6379", 7792 },
                    { helpers.redirect("MOVED 7792 redis-3:6379") })
        assert.same({ "ASK", "10.0.0.5:6379", 12 },
                    { helpers.redirect("hgetall routes: ASK 12 10.0.0.5:6379") })
    end)
    it("gives nil for any other error", function()
        for _, other in ipairs({ "CLUSTERDOWN The cluster is down", "ERR MOVED", "NOMOVED 1 a:1" }) do
            assert.is_nil((helpers.redirect(other)), other)
        end
        assert.is_nil((helpers.redirect(nil)))
    end)
end)

describe("key_slot", function()
    -- The slots Redis gives (redis-py's key_slot agrees): hash tags as Redis reads them.
    local cases = {
        ["{provision}:routes"] = 7792, foo = 12182, ["123456789"] = 12739, ["{}foo"] = 9500,
        ["{user1000}.following"] = 3443, user1000 = 3443, ["foo{}{bar}"] = 8363,
        ["foo{{bar}}zap"] = 4015, ["{bar"] = 4015,
    }
    for key, slot in pairs(cases) do
        it(key .. " is in slot " .. slot, function() assert.equal(slot, helpers.key_slot(key)) end)
    end
end)

describe("asking", function()
    it("sends ASKING only after an ASK redirect", function()
        local sent = 0
        local red = { asking = function() sent = sent + 1 end }
        helpers.asking(red, false)
        assert.equal(0, sent)
        helpers.asking(red, true)
        assert.equal(1, sent)
    end)
end)
