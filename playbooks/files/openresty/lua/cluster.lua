-- Redis Cluster (redis_mode: cluster): where to send the route table's commands.
--
-- Every key of the route table carries one hash tag (REDIS_KEY_PREFIX, "{provision}:"), so
-- they all live in one slot, and one node (that slot's master) answers for all of them. This
-- module keeps, per worker, that slot's master and its replicas as CLUSTER SLOTS gave them
-- (nodes announce their service names: cluster-announce-hostname and
-- cluster-preferred-endpoint-type hostname, so the names resolve on the shared network),
-- and runs a command function there:
--   * MOVED slot host:port: the slot moved (a failover, a reshard): go there, and ask
--     CLUSTER SLOTS again on the next request;
--   * ASK slot host:port: the slot is migrating: ASKING, then the same commands there, once;
--   * the master does not answer (its socket failed, its name no longer resolves) or the
--     cluster is down for the slot: ask another node for CLUSTER SLOTS; when that still names
--     the failed master (no failover yet), read from its replicas (READONLY);
--   * nothing answers: the error goes back to router.lua, which serves its stale copy.
local config = require "config"
local helpers = require "helpers"

local _M = {}

local view = nil      -- { master = "host:port", replicas = { "host:port", ... } }
local stale = false   -- ask CLUSTER SLOTS again before the next command

local MAX_HOPS = 5    -- redirects and failed nodes followed for one command

local split = helpers.split_endpoint

local function endpoint(node)  -- a CLUSTER SLOTS node: { host, port, id, ... }
    local host, port = node[1], node[2]
    if type(host) ~= "string" or host == "" or host == "?" or type(port) ~= "number" then
        return nil
    end
    return host .. ":" .. port
end

-- The slot's master and replicas from one node's CLUSTER SLOTS (the route table's slot,
-- computed here as Redis does: helpers.key_slot).
local function read_view(red)
    local routes_slot = helpers.key_slot(config.key_prefix .. "routes")
    local slots, err = red:cluster("slots")
    if type(slots) ~= "table" then
        return nil, "cluster slots: " .. tostring(err), slots == nil
    end
    for _, span in ipairs(slots) do
        if span[1] <= routes_slot and routes_slot <= span[2] then
            local found = { master = endpoint(span[3] or {}), replicas = {} }
            for i = 4, #span do
                found.replicas[#found.replicas + 1] = endpoint(span[i])
            end
            if found.master then
                return found
            end
        end
    end
    return nil, "cluster slots: no node serves slot " .. tostring(routes_slot), false
end

-- The nodes to ask for CLUSTER SLOTS: the ones we know, then the seeds (REDIS_NODES); not
-- the one that just failed.
local function candidates(failed)
    local list, seen = {}, {}
    local function add(ep)
        if ep and not seen[ep] and ep ~= failed then
            seen[ep] = true
            list[#list + 1] = ep
        end
    end
    if view then
        add(view.master)
        for _, ep in ipairs(view.replicas) do
            add(ep)
        end
    end
    for _, ep in ipairs(config.redis_nodes) do
        add(ep)
    end
    return list
end

local function refresh(run_on, failed)
    local last
    for _, ep in ipairs(candidates(failed)) do
        local host, port = split(ep)
        local found, err = run_on(host, port, read_view)
        if found then
            view, stale = found, false
            return true
        end
        last = ep .. ": " .. tostring(err)
    end
    return nil, "no cluster node answered CLUSTER SLOTS (" .. tostring(last) .. ")"
end

-- fn(red, asking): the caller's commands (with `asking`, each preceded by ASKING). Returns
-- what fn returns, or nil and the last error.
function _M.run(run_on, fn)
    if not view or stale then
        local ok, err = refresh(run_on)
        if not ok and not view then
            return nil, err
        end
    end
    local target, asking, readonly = view.master, false, false
    local replicas, tried, last = {}, {}, nil
    for _ = 1, MAX_HOPS do
        local host, port = split(target)
        local value, err, broken = run_on(host, port, function(red)
            if readonly then
                red:readonly()
            end
            return fn(red, asking)
        end)
        if value ~= nil then
            return value
        end
        tried[target] = true
        last = target .. ": " .. tostring(err)
        local text = tostring(err)
        local kind, redirected = helpers.redirect(text)
        if kind == "MOVED" then
            view.master, stale = redirected, true
            target, asking, readonly = redirected, false, false
        elseif kind == "ASK" then
            target, asking, readonly = redirected, true, false
        elseif broken or text:find("CLUSTERDOWN", 1, true) or text:find("TRYAGAIN", 1, true) then
            -- This node failed: ask the others who serves the slot now.
            local failed = target
            refresh(run_on, failed)
            if view.master ~= failed and not tried[view.master] then
                target, asking, readonly = view.master, false, false
            else
                -- No failover yet: the replicas of the slot hold the same table.
                if #replicas == 0 then
                    for _, ep in ipairs(view.replicas) do
                        if not tried[ep] then
                            replicas[#replicas + 1] = ep
                        end
                    end
                end
                target = table.remove(replicas, 1)
                if not target then
                    break
                end
                asking, readonly = false, true
                stale = true  -- ask again next time: the failover may be done by then
            end
        else
            return nil, err  -- a Redis error reply that no other node would answer otherwise
        end
    end
    return nil, "redis cluster: " .. tostring(last)
end

return _M
