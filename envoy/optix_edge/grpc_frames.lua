-- Checks grpc-web requests before the grpc_web filter turns them into gRPC: a frame whose length
-- prefix promises more bytes than the body holds would leave the upstream waiting until the
-- deadline, so it is answered at once with INVALID_ARGUMENT; a body over the size limit gets
-- RESOURCE_EXHAUSTED. Native gRPC passes untouched (no buffering): the server checks it.
local MAX_REQUEST_BYTES = __MAX_REQUEST_BYTES__

local function reply(handle, status, message)
  handle:respond(
    { [":status"] = "200", ["content-type"] = "application/grpc-web+proto",
      ["grpc-status"] = status, ["grpc-message"] = message },
    "")
end

function envoy_on_request(handle)
  local headers = handle:headers()
  local content_type = headers:get("content-type") or ""
  -- Binary grpc-web only; grpc-web-text (base64) is decoded and checked by the grpc_web filter.
  if content_type ~= "application/grpc-web" and content_type ~= "application/grpc-web+proto" then
    return
  end
  local declared = tonumber(headers:get("content-length") or "")
  if declared ~= nil and declared > MAX_REQUEST_BYTES then
    return reply(handle, "8", "request larger than " .. MAX_REQUEST_BYTES .. " bytes")
  end
  local body = handle:body()
  if body == nil then
    return
  end
  local size = body:length()
  local position = 0
  while position < size do
    if size - position < 5 then
      return reply(handle, "3", "malformed grpc-web frame: incomplete message header")
    end
    local _, b1, b2, b3, b4 = string.byte(body:getBytes(position, 5), 1, 5)
    position = position + 5 + ((b1 * 256 + b2) * 256 + b3) * 256 + b4
  end
  if position ~= size then
    reply(handle, "3", "malformed grpc-web frame: message shorter than its length prefix")
  end
end
