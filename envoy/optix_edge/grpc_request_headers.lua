-- Runs on every request before the grpc_web filter rewrites grpc-web into gRPC, on headers only
-- for native gRPC (its body streams through unbuffered):
-- - a binary header (name ending in -bin) must hold base64, or grpc core answers INTERNAL;
-- - grpc-web: a body over the size limit is refused before any of it is buffered, grpc-web-text
--   that is not base64 too (grpc_web would answer it as INTERNAL), and the request is marked so
--   the frame check after grpc_web knows it came as grpc-web.
local MARKER = "__MARKER_HEADER__"
local MAX_REQUEST_BYTES = __MAX_REQUEST_BYTES__

local function refuse(handle, content_type, status, message)
  handle:respond(
    { [":status"] = "200", ["content-type"] = content_type,
      ["grpc-status"] = status, ["grpc-message"] = message },
    "")
end

local ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

-- Whether the last group's unused low bits are zero, as strict decoders (grpc core) demand:
-- two characters carry one byte (4 spare bits), three carry two (2 spare bits).
local function canonical_tail(data)
  local tail = #data % 4
  if tail == 1 then
    return false
  end
  if tail == 0 then
    return true
  end
  local last = string.find(ALPHABET, string.sub(data, -1), 1, true) - 1
  local spare = tail == 2 and 16 or 4
  return last % spare == 0
end

-- Base64 of the standard alphabet, padding only at the very end, canonical last group.
local function is_canonical_base64(text, padded)
  local data, padding = string.match(text, "^([%w+/]*)(=*)$")
  if data == nil or #padding > 2 then
    return false
  end
  if padded and (#text % 4 ~= 0) then
    return false
  end
  if #padding > 0 and (#data + #padding) % 4 ~= 0 then
    return false
  end
  return canonical_tail(data)
end

-- Base64 as grpc_web decodes it: whole groups of four.
local function is_base64(text)
  return is_canonical_base64(text, true)
end

-- Base64 as gRPC metadata carries it: padded or not.
local function is_metadata_base64(text)
  return is_canonical_base64(text, false)
end

function envoy_on_request(handle)
  local headers = handle:headers()
  local content_type = headers:get("content-type") or ""
  local is_web = string.find(content_type, "application/grpc-web", 1, true) == 1
  local reply_type = is_web and "application/grpc-web+proto" or "application/grpc"
  for name, value in pairs(headers) do
    if string.sub(name, -4) == "-bin" and not is_metadata_base64(value) then
      return refuse(handle, reply_type, "3", "malformed " .. name .. " header: not base64")
    end
  end
  if not is_web then
    return
  end
  local is_text = string.find(content_type, "text", 1, true) ~= nil
  local limit = MAX_REQUEST_BYTES
  if is_text then
    limit = math.ceil(MAX_REQUEST_BYTES / 3) * 4 -- the base64 form of the largest body
  end
  local declared = tonumber(headers:get("content-length") or "")
  if declared ~= nil and declared > limit then
    return refuse(handle, reply_type, "8", "request larger than " .. MAX_REQUEST_BYTES .. " bytes")
  end
  headers:replace(MARKER, "1")
  if is_text then
    local body = handle:body()
    if body ~= nil and not is_base64(body:getBytes(0, body:length())) then
      return refuse(handle, reply_type, "3", "malformed grpc-web-text body: not base64")
    end
  end
end
