-- codeLlama/status notifications ({state, model, message, lastLatencyMs, ...}) per client,
-- for :CodeLlamaStatus, :checkhealth and statuslines.
local api = vim.api
local util = require("code_llama.util")
local M = { by_client = {} }

function M.handler(_, result, ctx)
  M.by_client[ctx.client_id] = result
  api.nvim_exec_autocmds("User", { pattern = "CodeLlamaStatus", modeline = false, data = result })
  vim.cmd.redrawstatus()
end

--- The last status of the client attached to `buf` (nil: none attached or none received).
function M.get(buf)
  local client = util.client(buf)
  return client and M.by_client[client.id]
end

--- Short text for a statusline: "" without a server, else e.g. "Code Llama: ready 42 ms".
function M.line(buf, enabled)
  local client = util.client(buf)
  if not client then
    return ""
  end
  local status = M.by_client[client.id]
  if not enabled then
    return "Code Llama: off"
  elseif not status then
    return "Code Llama: starting"
  end
  local text = "Code Llama: " .. status.state
  if status.state == "ready" and type(status.lastLatencyMs) == "number" then
    text = text .. (" %d ms"):format(status.lastLatencyMs)
  end
  return text
end

return M
