-- Checks a grpc-web request's body after the grpc_web filter decoded it into gRPC frames (so
-- binary and base64 text are checked alike), before anything goes upstream: a frame whose length
-- prefix promises more bytes than the body holds would leave the server waiting until the
-- deadline, so it is INVALID_ARGUMENT at once; a compressed message is UNIMPLEMENTED. Only
-- grpc-web requests get here (the marker header below); native gRPC streams through unbuffered.
local MARKER = "__MARKER_HEADER__"

local function refuse(handle, status, message)
  handle:respond(
    { [":status"] = "200", ["content-type"] = "application/grpc",
      ["grpc-status"] = status, ["grpc-message"] = message },
    "")
end

function envoy_on_request(handle)
  local headers = handle:headers()
  headers:remove(MARKER)
  local body = handle:body()
  if body == nil then
    return
  end
  local size = body:length()
  local position = 0
  while position < size do
    if size - position < 5 then
      return refuse(handle, "3", "malformed grpc-web frame: incomplete message header")
    end
    local flag, b1, b2, b3, b4 = string.byte(body:getBytes(position, 5), 1, 5)
    if flag > 1 then
      return refuse(handle, "3", "malformed grpc-web frame: unknown flags")
    end
    if flag == 1 then
      -- grpc-web clients send requests uncompressed; a compressed one could only reach the
      -- server's decompressor, which answers a corrupt message as INTERNAL.
      return refuse(handle, "12", "compressed grpc-web requests are not supported")
    end
    position = position + 5 + ((b1 * 256 + b2) * 256 + b3) * 256 + b4
  end
  if position ~= size then
    refuse(handle, "3", "malformed grpc-web frame: message shorter than its length prefix")
  end
end
