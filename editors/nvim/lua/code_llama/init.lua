-- Code Llama for Neovim: require("code_llama").setup({...}). See :help code_llama.
local api = vim.api
local config = require("code_llama.config")
local inline = require("code_llama.inline")
local actions = require("code_llama.actions")
local status = require("code_llama.status")
local util = require("code_llama.util")

local M = { enabled = true, sessions = {} }

--- nvim's own inline completion (0.12+) unless the user turned it off.
function M.native()
  return M.config.native ~= false and vim.lsp.inline_completion ~= nil
end
local native = M.native

local function root(buf)
  local name = api.nvim_buf_get_name(buf)
  if name == "" then
    return vim.fn.getcwd()
  end
  return vim.fs.root(buf, M.config.root_markers) or vim.fs.dirname(name)
end

local function attach(client, buf)
  if native() then
    -- Per buffer: nvim 0.12 treats buffers as off until enabled (a client filter alone is not enough).
    return vim.lsp.inline_completion.enable(M.enabled, { bufnr = buf })
  end
  M.sessions[buf] = inline.attach(buf, client, {
    debounce_ms = M.config.debounce_ms,
    enabled = function() return M.enabled and M.config.auto_trigger end,
    on_detach = function() M.sessions[buf] = nil end,
  })
end

--- The vim.lsp.config / vim.lsp.start table for the server.
function M.lsp_config(cfg)
  local capabilities = vim.lsp.protocol.make_client_capabilities()
  -- Declared so that the server does not also answer textDocument/completion with the model.
  capabilities.textDocument.inlineCompletion = capabilities.textDocument.inlineCompletion
    or { dynamicRegistration = false }
  return {
    name = util.NAME,
    cmd = cfg.cmd,
    filetypes = cfg.filetypes,
    init_options = config.server_settings(cfg.settings),
    capabilities = capabilities,
    handlers = { ["codeLlama/status"] = status.handler, ["codeLlama/partialResult"] = actions.on_partial,
                 ["workspace/applyEdit"] = actions.apply_edit },
  }
end

local function session()
  return M.sessions[api.nvim_get_current_buf()]
end

--- Insert the shown suggestion: "all" (default), "line" or "word". False when none is shown.
function M.accept(what)
  what = what or "all"
  if native() then
    return what == "all" and vim.lsp.inline_completion.get() or false
  end
  local s = session()
  return s ~= nil and s:accept(what)
end

function M.dismiss()
  local s = not native() and session()
  if not (s and s.shown) then
    return false
  end
  s:detach()
  return true
end

--- Ask for a suggestion now (also when automatic suggestions are off).
function M.trigger()
  local s = not native() and session()
  if not s then
    return false
  end
  s:request(inline.INVOKED)
  return true
end

--- Show the next (1) or previous (-1) candidate.
function M.cycle(delta)
  if native() then
    vim.lsp.inline_completion.select({ count = delta })
    return true
  end
  local s = session()
  return s ~= nil and s:cycle(delta)
end

--- Turn automatic suggestions on or off (`on` nil: flip).
function M.toggle(on)
  if on == nil then
    on = not M.enabled
  end
  M.enabled = on
  if native() then
    for _, client in ipairs(vim.lsp.get_clients({ name = util.NAME })) do
      for buf in pairs(client.attached_buffers) do
        vim.lsp.inline_completion.enable(on, { bufnr = buf })
      end
    end
  else
    for _, s in pairs(M.sessions) do
      s:detach()
    end
  end
  vim.cmd.redrawstatus()
  vim.notify("Code Llama: suggestions " .. (on and "on" or "off"))
end

--- For 'statusline' / lualine: "Code Llama: ready 42 ms", "Code Llama: off", "" without a server.
function M.statusline()
  return status.line(api.nvim_get_current_buf(), M.enabled)
end

--- Change server settings at run time (workspace/didChangeConfiguration); servers started
--- later get them as initializationOptions.
function M.update_settings(settings)
  M.config.settings = vim.tbl_extend("force", M.config.settings, settings)
  M.lsp.init_options = config.server_settings(M.config.settings)
  if vim.fn.has("nvim-0.11") == 1 then
    vim.lsp.config(util.NAME, { init_options = M.lsp.init_options })
  end
  for _, client in ipairs(vim.lsp.get_clients({ name = util.NAME })) do
    util.call(client, "notify", "workspace/didChangeConfiguration",
              { settings = { codeLlama = config.server_settings(settings) } })
  end
end

local function map_keys(keymaps)
  local handlers = {
    accept = function() return M.accept("all") end,
    accept_line = function() return M.accept("line") end,
    accept_word = function() return M.accept("word") end,
    dismiss = M.dismiss,
    trigger = M.trigger,
    next = function() return M.cycle(1) end,
    prev = function() return M.cycle(-1) end,
  }
  for name, fn in pairs(handlers) do
    local key = keymaps[name]
    if key then
      vim.keymap.set("i", key, function()
        if not fn() then -- nothing to do: the key does what it did without this plugin
          api.nvim_feedkeys(api.nvim_replace_termcodes(key, true, false, true), "n", false)
        end
      end, { desc = "Code Llama: " .. name:gsub("_", " ") })
    end
  end
end

local function range_of(opts)
  if opts.range == 0 then
    return nil
  end
  local client = util.client(0)
  return actions.line_range(0, opts.line1, opts.line2, client and client.offset_encoding or "utf-16")
end

local function commands()
  local command = api.nvim_create_user_command
  command("CodeLlamaExplain", function(opts) actions.explain(range_of(opts)) end,
          { range = true, desc = "Explain the selection or the function at the cursor" })
  command("CodeLlamaAsk", function(opts) actions.ask(range_of(opts), opts.args) end,
          { range = true, nargs = "*", desc = "Ask a question about the selection or the function at the cursor" })
  command("CodeLlamaDocstring", function(opts)
    actions.edit("codeLlama.generateDocstring", range_of(opts), opts.bang and { replace = true } or nil)
  end, { range = true, bang = true, desc = "Write a docstring for the function or class at the cursor (! replaces one)" })
  command("CodeLlamaTests", function(opts) actions.edit("codeLlama.generateTests", range_of(opts)) end,
          { range = true, desc = "Write tests for the function, class or module at the cursor" })
  command("CodeLlamaToggle", function() M.toggle() end, { desc = "Automatic suggestions on/off" })
  command("CodeLlamaStatus", function()
    local s = status.get(0)
    vim.notify(M.statusline() .. (s and (s.message or "") ~= "" and (" (" .. s.message .. ")") or ""))
  end, { desc = "Show the server's status" })
end

function M.setup(opts)
  M.config = config.merge(opts)
  actions.float = M.config.float
  local lsp = M.lsp_config(M.config)
  M.lsp = lsp
  if vim.fn.has("nvim-0.11") == 1 then
    lsp.root_dir = function(buf, on_dir) on_dir(root(buf)) end
    vim.lsp.config(util.NAME, lsp)
    vim.lsp.enable(util.NAME)
  else
    api.nvim_create_autocmd("FileType", {
      group = api.nvim_create_augroup("code_llama", { clear = true }),
      pattern = M.config.filetypes,
      callback = function(args)
        vim.lsp.start(vim.tbl_extend("force", lsp, { root_dir = root(args.buf) }), { bufnr = args.buf })
      end,
    })
  end
  -- LspAttach rather than on_attach: a user's own on_attach in vim.lsp.config stays possible.
  api.nvim_create_autocmd("LspAttach", {
    group = api.nvim_create_augroup("code_llama_attach", { clear = true }),
    callback = function(args)
      local client = vim.lsp.get_client_by_id(args.data.client_id)
      if client and client.name == util.NAME then
        attach(client, args.buf)
      end
    end,
  })
  map_keys(M.config.keymaps)
  commands()
end

return M
