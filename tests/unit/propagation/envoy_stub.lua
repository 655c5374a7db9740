-- A stand-in for the parts of Envoy's Lua HTTP filter API that service-router-headers.lua uses,
-- with the semantics of Envoy's documentation (configuration/http/http_filters/lua_filter):
--   headers():get(k)      the value, several values joined with ",", or nil; keys case-insensitive
--   headers():add(k, v)   appends one more value
--   headers():replace(k, v) sets the single value (adds when absent)
--   headers():remove(k)   removes every value
--   pairs(headers)        every (key, value); modifying the map during iteration is an error, and
--                         the iteration must run to its end before any modification
--   log{Trace,Debug,Info,Warn,Err,Critical}(msg), clearRouteCache() (absent before Envoy 1.34; header changes
--                         also clear the route cache implicitly, not modelled here)
-- Strictness is deliberate: misuse that Envoy rejects raises here too.

-- Envoy builds LuaJIT with LUAJIT_ENABLE_LUA52COMPAT, so pairs() honours __pairs; lupa's LuaJIT
-- is built without it, hence this shim.
local raw_pairs = pairs
function pairs(t)
  local mt = getmetatable(t)
  if mt and mt.__pairs then return mt.__pairs(t) end
  return raw_pairs(t)
end

local Headers = {}
Headers.__index = Headers

local function check(self, key, value, needs_value)
  if type(key) ~= "string" then error("header key must be a string", 3) end
  if needs_value and type(value) ~= "string" then error("header value must be a string", 3) end
  if self.iterating then error("headers modified during iteration", 3) end
end

function Headers:get(key)
  if type(key) ~= "string" then error("header key must be a string", 2) end
  key = string.lower(key)
  local values = {}
  for _, e in ipairs(self.entries) do
    if e[1] == key then values[#values + 1] = e[2] end
  end
  if #values == 0 then return nil end
  return table.concat(values, ",")
end

function Headers:add(key, value)
  check(self, key, value, true)
  table.insert(self.entries, { string.lower(key), value })
end

function Headers:remove(key)
  check(self, key, nil, false)
  key = string.lower(key)
  local kept = {}
  for _, e in ipairs(self.entries) do
    if e[1] ~= key then kept[#kept + 1] = e end
  end
  self.entries = kept
end

function Headers:replace(key, value)
  check(self, key, value, true)
  key = string.lower(key)
  local kept, at = {}, nil
  for _, e in ipairs(self.entries) do
    if e[1] == key then
      if at == nil then at = #kept + 1; kept[at] = { key, value } end
    else
      kept[#kept + 1] = e
    end
  end
  if at == nil then kept[#kept + 1] = { key, value } end
  self.entries = kept
end

function Headers:__pairs()
  local i = 0
  self.iterating = true
  return function()
    i = i + 1
    local e = self.entries[i]
    if e == nil then
      self.iterating = false
      return nil
    end
    return e[1], e[2]
  end, self, nil
end

local function new_headers(entries)
  local self = setmetatable({ entries = {}, iterating = false }, Headers)
  for i = 1, #entries do
    self:add(entries[i][1], entries[i][2])
  end
  return self
end

local Handle = {}
Handle.__index = Handle
local OldHandle = {} -- Envoy before 1.34: no clearRouteCache
OldHandle.__index = OldHandle

function Handle:headers()
  if self.broken then error("headers() unavailable") end
  return self._headers
end

for _, level in ipairs({ "Trace", "Debug", "Info", "Warn", "Err", "Critical" }) do
  Handle["log" .. level] = function(self, message)
    if type(message) ~= "string" then error("log message must be a string", 2) end
    self.logs[#self.logs + 1] = { level, message }
  end
end

for name, method in raw_pairs(Handle) do
  if name ~= "__index" then OldHandle[name] = method end
end

function Handle:clearRouteCache()
  self.route_cache_cleared = self.route_cache_cleared + 1
end

-- entries: array of {key, value}; options: { old_envoy = bool, broken = bool }
return function(entries, old_envoy, broken)
  local meta = old_envoy and OldHandle or Handle
  return setmetatable({
    _headers = new_headers(entries), logs = {}, route_cache_cleared = 0, broken = broken,
  }, meta)
end
