-- :checkhealth code_llama
local util = require("code_llama.util")
local health = vim.health
local M = {}

function M.check()
  health.start("code_llama")
  local v = vim.version()
  local version = ("%d.%d.%d"):format(v.major, v.minor, v.patch)
  if vim.fn.has("nvim-0.10") == 0 then
    health.error("Neovim " .. version .. ": 0.10 or newer is needed")
  else
    health.ok("Neovim " .. version)
  end

  local plugin = package.loaded["code_llama"]
  if not (plugin and plugin.config) then
    return health.error("setup() was not called", { 'Add require("code_llama").setup({}) to your config' })
  end
  health.info(plugin.native() and "inline completion: Neovim's own (vim.lsp.inline_completion)"
              or "inline completion: ghost text drawn by this plugin (Neovim's own: 0.12+, native = \"auto\")")
  local exe = plugin.config.cmd[1]
  if vim.fn.executable(exe) == 1 then
    health.ok("server: " .. vim.fn.exepath(exe))
  else
    health.error("server executable not found: " .. exe,
                 { 'pipx install "/path/to/code-llama-ls[local]"', "or set cmd = { '/path/to/code-llama-ls', '--stdio' }" })
  end

  -- :checkhealth runs in its own buffer: report every code_llama client. get_clients() leaves out
  -- a client until the server has answered `initialize`, which takes seconds while the server
  -- imports torch: _uninitialized (0.11+) lists those too.
  local clients = vim.lsp.get_clients({ name = util.NAME, _uninitialized = true })
  local initialized = {}
  for _, client in ipairs(vim.lsp.get_clients({ name = util.NAME })) do
    initialized[client.id] = true
  end
  if not clients[1] then
    health.warn("no code_llama client is running", { "Open a file of one of: " .. table.concat(plugin.config.filetypes, ", ") })
  end
  for _, client in ipairs(clients) do
    local buffers = vim.tbl_map(function(buf) return vim.fs.basename(vim.api.nvim_buf_get_name(buf)) end,
                                vim.lsp.get_buffers_by_client_id(client.id))
    health.ok(("client %d attached to %s (root %s)"):format(client.id, table.concat(buffers, ", "),
                                                          client.root_dir or "none"))
    local status = require("code_llama.status").by_client[client.id]
    if not initialized[client.id] then
      health.info("server starting: it has not answered initialize yet")
    elseif not status then
      health.warn("no codeLlama/status received yet")
    elseif status.state == "error" then
      health.error("server: error: " .. (status.message or ""))
    else
      health.ok(("server: %s, model %s%s"):format(status.state, status.model or "?",
                (status.message or "") ~= "" and (" (" .. status.message .. ")") or ""))
    end
  end
  health.info("automatic suggestions: " .. (plugin.enabled and "on" or "off"))
end

return M
