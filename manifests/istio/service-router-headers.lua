-- service-router header propagation: an Envoy Lua HTTP filter (see manifests/istio/README.md).
--
-- Turns routing overrides carried in propagated context into the headers the service-router's
-- VirtualService routes match on:  service-router-<origin>-<ns>: <clone>.<ns>
-- Sources, by precedence per header name (highest first):
--   1. PAYLOAD_HEADER: base64url JSON payload of a JWT verified by Istio's RequestAuthentication
--      (outputPayloadToHeader), claim "service_routers";
--   2. the bearer JWT in "authorization", claim "service_routers" -- signature NOT verified here;
--   3. "baggage" members whose key starts with "service-router-".
-- A malformed source is ignored as a whole; the filter never fails a request (pcall around all).
-- The Python twin is service-router/src/service_router/propagation.py; tests run this exact
-- source under LuaJIT against the same table of cases and compare the limits below.
--
-- This file is the only copy of the source: manifests/istio/render.py embeds it in the
-- EnvoyFilter manifests, replacing the CONFIG block per manifest.

-- Configuration, set per manifest by render.py:
--   PAYLOAD_HEADER        header holding a verified JWT payload; "" disables source 1
--   READ_BEARER           read source 2 (the bearer JWT, unverified)
--   READ_BAGGAGE          read source 3 (baggage)
--   STRIP_CLIENT_HEADERS  first remove every service-router-* header the client sent
-- BEGIN CONFIG
local PAYLOAD_HEADER = ""
local READ_BEARER = true
local READ_BAGGAGE = true
local STRIP_CLIENT_HEADERS = false
-- END CONFIG

local HEADER_PREFIX = "service-router-"
local CLAIM = "service_routers"
local MAX_ENTRIES = 32
local MAX_LABEL_LENGTH = 63
local MAX_NAME_LENGTH = 142
local MAX_TOKEN_BYTES = 8192
local MAX_JSON_DEPTH = 32
local MAX_BAGGAGE_BYTES = 8192
local MAX_BAGGAGE_MEMBERS = 64

local find, sub, byte, char = string.find, string.sub, string.byte, string.char

-- base64url ---------------------------------------------------------------------------------
local B64 = {}
do
  local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
  for i = 1, 64 do
    B64[byte(alphabet, i)] = i - 1
  end
end

-- Padding optional (JWTs omit it), alphabet strict, leftover bits ignored: as Python's decoder.
local function b64url_decode(s)
  if sub(s, -1) == "=" then s = sub(s, 1, -2) end
  if sub(s, -1) == "=" then s = sub(s, 1, -2) end
  local n = #s
  if n % 4 == 1 then return nil end
  local out, acc, bits = {}, 0, 0
  for i = 1, n do
    local v = B64[byte(s, i)]
    if v == nil then return nil end
    acc = acc * 64 + v
    bits = bits + 6
    if bits >= 8 then
      bits = bits - 8
      local scale = 2 ^ bits
      out[#out + 1] = char(math.floor(acc / scale))
      acc = acc % scale
    end
  end
  return table.concat(out)
end

-- JSON (RFC 8259, as Python's json.loads without NaN/Infinity) ------------------------------
local OBJECT, ARRAY, NULL = {}, {}, setmetatable({}, { __tostring = function() return "null" end })
local ESCAPES = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t" }

local function utf8_encode(cp)
  if cp < 0x80 then return char(cp) end
  if cp < 0x800 then return char(0xC0 + math.floor(cp / 0x40), 0x80 + cp % 0x40) end
  if cp < 0x10000 then
    return char(0xE0 + math.floor(cp / 0x1000), 0x80 + math.floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
  end
  return char(0xF0 + math.floor(cp / 0x40000), 0x80 + math.floor(cp / 0x1000) % 0x40,
    0x80 + math.floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
end

local function skip_ws(s, i)
  return find(s, "[^ \t\n\r]", i) or #s + 1
end

local function parse_string(s, i) -- s[i] == '"'
  local parts, j = {}, i + 1
  while true do
    local k = find(s, '["\\%z\1-\31]', j)
    if not k then return nil end
    local c = byte(s, k)
    parts[#parts + 1] = sub(s, j, k - 1)
    if c == 34 then
      return table.concat(parts), k + 1
    elseif c ~= 92 then
      return nil -- raw control character
    end
    local e = sub(s, k + 1, k + 1)
    if e == "u" then
      local hex = string.match(s, "^%x%x%x%x", k + 2)
      if not hex then return nil end
      local cp, nxt = tonumber(hex, 16), k + 6
      if cp >= 0xD800 and cp <= 0xDBFF then
        local low = string.match(s, "^\\u(%x%x%x%x)", nxt)
        local lo = low and tonumber(low, 16)
        if lo and lo >= 0xDC00 and lo <= 0xDFFF then
          cp, nxt = 0x10000 + (cp - 0xD800) * 0x400 + (lo - 0xDC00), nxt + 6
        end
      end
      parts[#parts + 1] = utf8_encode(cp)
      j = nxt
    else
      local r = ESCAPES[e]
      if not r then return nil end
      parts[#parts + 1] = r
      j = k + 2
    end
  end
end

local function parse_number(s, i)
  local int = string.match(s, "^-?0", i) or string.match(s, "^-?[1-9]%d*", i)
  if not int then return nil end
  local j = i + #int
  local frac = string.match(s, "^%.%d+", j)
  if frac then j = j + #frac end
  local exp = string.match(s, "^[eE][-+]?%d+", j)
  if exp then j = j + #exp end
  return tonumber(sub(s, i, j - 1)), j
end

local parse_value

local function parse_container(s, i, depth, close, kind)
  local t = setmetatable({}, kind)
  i = skip_ws(s, i + 1)
  if sub(s, i, i) == close then return t, i + 1 end
  while true do
    local key, v
    if kind == OBJECT then
      if sub(s, i, i) ~= '"' then return nil end
      key, i = parse_string(s, i)
      if key == nil then return nil end
      i = skip_ws(s, i)
      if sub(s, i, i) ~= ":" then return nil end
      i = i + 1
    end
    v, i = parse_value(s, i, depth + 1)
    if v == nil then return nil end
    if kind == OBJECT then t[key] = v else t[#t + 1] = v end -- duplicate keys: last wins
    i = skip_ws(s, i)
    local d = sub(s, i, i)
    if d == close then return t, i + 1 end
    if d ~= "," then return nil end
    i = skip_ws(s, i + 1)
  end
end

parse_value = function(s, i, depth)
  if depth > MAX_JSON_DEPTH then return nil end
  i = skip_ws(s, i)
  local c = sub(s, i, i)
  if c == "{" then return parse_container(s, i, depth, "}", OBJECT) end
  if c == "[" then return parse_container(s, i, depth, "]", ARRAY) end
  if c == '"' then return parse_string(s, i) end
  if sub(s, i, i + 3) == "true" then return true, i + 4 end
  if sub(s, i, i + 4) == "false" then return false, i + 5 end
  if sub(s, i, i + 3) == "null" then return NULL, i + 4 end
  return parse_number(s, i)
end

local function json_decode(s)
  local v, i = parse_value(s, 1, 1)
  if v == nil or skip_ws(s, i) <= #s then return nil end
  return v
end

-- the claim schema ----------------------------------------------------------------------------
local function is_label(s)
  return #s >= 1 and #s <= MAX_LABEL_LENGTH and find(s, "^[a-z0-9]") ~= nil
    and find(s, "[a-z0-9]$") ~= nil and find(s, "[^a-z0-9%-]") == nil
end

-- service-router-<origin>-<ns> = <clone>.<ns>, every part a DNS label, the namespaces equal.
local function valid_entry(name, value)
  if type(name) ~= "string" or type(value) ~= "string" then return false end
  if #name > MAX_NAME_LENGTH or sub(name, 1, #HEADER_PREFIX) ~= HEADER_PREFIX then return false end
  local clone, ns = string.match(value, "^([^.]*)%.(.*)$")
  if not clone or not is_label(clone) or not is_label(ns) then return false end
  local rest = sub(name, #HEADER_PREFIX + 1)
  local origin_length = #rest - #ns - 1
  if origin_length < 1 or sub(rest, origin_length + 1) ~= "-" .. ns then return false end
  return is_label(sub(rest, 1, origin_length))
end

-- Client text in a log line: bounded, and nothing that could forge another line.
local function printable(text)
  return (string.gsub(sub(tostring(text), 1, 64), "[^%w%-_.]", "?"))
end

local function parse_claim(claim)
  if type(claim) ~= "table" or getmetatable(claim) ~= OBJECT then return nil, "claim is not an object" end
  local count = 0
  for name, value in next, claim do
    count = count + 1
    if count > MAX_ENTRIES then return nil, "claim has too many entries" end
    if not valid_entry(name, value) then return nil, "invalid claim entry " .. printable(name) end
  end
  return claim
end

local function claim_from_payload(segment)
  local payload = b64url_decode(segment)
  if not payload then return nil, "payload is not base64url" end
  -- Most tokens carry no claim: skip parsing them (a claim name written with escapes is not seen).
  if not find(payload, '"' .. CLAIM .. '"', 1, true) then return {} end
  local doc = json_decode(payload)
  if type(doc) ~= "table" or getmetatable(doc) ~= OBJECT then return nil, "payload is not a JSON object" end
  local claim = doc[CLAIM]
  if claim == nil then return {} end
  return parse_claim(claim)
end

-- sources -----------------------------------------------------------------------------------
local function from_payload_header(value)
  if #value > MAX_TOKEN_BYTES then return nil, "payload header too long" end
  return claim_from_payload(value)
end

-- Not "Bearer a.b.c" (Basic, opaque token, JWE) is no source at all, not an error.
local function from_bearer(value)
  if #value > MAX_TOKEN_BYTES then return nil, "authorization too long" end
  local scheme, token = string.match(value, "^[ \t]*(%a+)[ \t]+([^ \t]+)[ \t]*$")
  if not scheme or string.lower(scheme) ~= "bearer" then return {} end
  local payload = string.match(token, "^[^.]+%.([^.]+)%.[^.]*$")
  if not payload then return {} end
  return claim_from_payload(payload)
end

local function trim(s)
  return (string.gsub((string.gsub(s, "^[ \t]+", "")), "[ \t]+$", ""))
end

local function from_baggage(value)
  if #value > MAX_BAGGAGE_BYTES then return nil, "baggage too long" end
  local members = {}
  for member in string.gmatch(value .. ",", "([^,]*),") do
    member = trim(member)
    if member ~= "" then
      members[#members + 1] = member
      if #members > MAX_BAGGAGE_MEMBERS then return nil, "baggage has too many members" end
    end
  end
  local out, count = {}, 0
  for _, member in ipairs(members) do
    local pair = string.match(member, "^[^;]*")
    local eq = find(pair, "=", 1, true)
    local key = trim(eq and sub(pair, 1, eq - 1) or pair)
    if sub(key, 1, #HEADER_PREFIX) == HEADER_PREFIX then
      if not eq then return nil, "baggage member without value" end
      local raw = trim(sub(pair, eq + 1))
      if find((string.gsub(raw, "%%%x%x", "")), "%", 1, true) then return nil, "bad percent-encoding" end
      local decoded = string.gsub(raw, "%%(%x%x)", function(h) return char(tonumber(h, 16)) end)
      if not valid_entry(key, decoded) then return nil, "invalid baggage member " .. printable(key) end
      if out[key] == nil then count = count + 1 end
      out[key] = decoded
    end
  end
  if count > MAX_ENTRIES then return nil, "baggage has too many service-router members" end
  return out
end

-- the filter --------------------------------------------------------------------------------
local function read(handle, headers, enabled, name, parse, merged)
  if not enabled then return end
  local value = headers:get(name)
  if value == nil then return end
  local overrides, err = parse(value)
  if overrides == nil then
    handle:logWarn("service-router: ignoring " .. name .. ": " .. err)
    return
  end
  for header, header_value in next, overrides do
    merged[header] = header_value
  end
end

local function propagate(handle)
  local headers = handle:headers()
  local changed = false
  if STRIP_CLIENT_HEADERS then
    local names = {}
    for name, _ in pairs(headers) do -- no changes while iterating: Envoy forbids them
      if sub(string.lower(name), 1, #HEADER_PREFIX) == HEADER_PREFIX then names[#names + 1] = name end
    end
    for _, name in ipairs(names) do
      headers:remove(name)
      changed = true
    end
  end
  local merged = {} -- lowest precedence first, later sources overwrite per header name
  read(handle, headers, READ_BAGGAGE, "baggage", from_baggage, merged)
  read(handle, headers, READ_BEARER, "authorization", from_bearer, merged)
  read(handle, headers, PAYLOAD_HEADER ~= "", PAYLOAD_HEADER, from_payload_header, merged)
  for name, value in next, merged do
    if headers:get(name) ~= value then
      headers:replace(name, value)
      changed = true
    end
  end
  -- The connection manager picked the route before the filters ran. The Lua filter clears that
  -- cached route itself when a script modifies request headers, unless its clear_route_cache
  -- option is false; the explicit call (Envoy >= 1.34) keeps the re-evaluation either way.
  if changed and handle.clearRouteCache ~= nil then
    handle:clearRouteCache()
  end
end

function envoy_on_request(request_handle)
  local ok, err = pcall(propagate, request_handle)
  if not ok then
    pcall(request_handle.logWarn, request_handle, "service-router: header propagation failed: " .. tostring(err))
  end
end
