-- End to end in real nvim (headless) with the real server: nvim --headless --clean -u e2e_nvim.lua
-- $CODE_LLAMA_NVIM_ARGS names a JSON file: {plugin, server, model, workspace, file, keys, question}.
local args = vim.json.decode(table.concat(vim.fn.readfile(os.getenv("CODE_LLAMA_NVIM_ARGS")), "\n"))
package.path = vim.fs.dirname(debug.getinfo(1, "S").source:sub(2)) .. "/?.lua;" .. package.path
local t = require("driver_nvim")

-- The plugin as the README installs it: on the runtimepath, then setup().
vim.opt.runtimepath:append(args.plugin)
require("code_llama").setup({
  cmd = { args.server, "--stdio" },
  settings = { model = args.model, local_files_only = true, context_enabled = false, instruct_max_new_tokens = 64 },
})

-- Typed indentation stays exactly as typed.
vim.cmd("filetype indent off")
vim.o.autoindent = false

local api = vim.api
local ghost, float = t.ghost, t.float

local function buffer_text()
  return table.concat(api.nvim_buf_get_lines(0, 0, -1, true), "\n") .. "\n"
end

-- The server's window/logMessage lines (warnings about settings among them).
local log_messages = {}
vim.lsp.handlers["window/logMessage"] = function(_, result)
  log_messages[#log_messages + 1] = result.message
end

-- Each action reports $/progress; an "end" means it finished.
local progress_ends = 0
api.nvim_create_autocmd("LspProgress", { callback = function(ev)
  if ev.data.params.value.kind == "end" then
    progress_ends = progress_ends + 1
  end
end })

t.run(function()
  local r = t.results
  vim.cmd.edit(vim.fs.joinpath(args.workspace, args.file))
  local source = api.nvim_get_current_buf()
  t.wait_until("the server to be ready", function()
    local status = require("code_llama.status").get(0)
    return status and status.state == "ready"
  end, 45000) -- Python imports torch and transformers: slow on a busy machine
  r.statusline_ready = require("code_llama").statusline()

  -- Typing: the ghost text appears after the last keystroke.
  api.nvim_input("i" .. args.keys)
  r.ghost = t.wait_until("ghost text", ghost)
  r.typed = buffer_text()

  -- Accept the next word (the rest stays on screen), then everything with <Tab>.
  api.nvim_input("<M-Right>")
  r.after_word = t.wait_until("the word to be inserted", function()
    return buffer_text() ~= r.typed and buffer_text()
  end)
  r.ghost_after_word = ghost()
  api.nvim_input("<Tab>")
  r.accepted = t.wait_until("the suggestion to be inserted", function()
    return buffer_text() ~= r.after_word and buffer_text()
  end)
  r.ghost_after_accept = ghost()
  r.mode_after_accept = api.nvim_get_mode().mode
  r.statusline = require("code_llama").statusline()

  -- :CodeLlamaExplain over the whole file: Markdown in a floating window.
  api.nvim_input("<Esc>:%CodeLlamaExplain<CR>")
  r.explain = t.wait_until("the explanation", function()
    local shown = float()
    return shown and not shown.title:find("writing") and shown
  end, 30000)

  -- :CodeLlamaAsk asks for the question; the float then shows what the server answers to it
  -- (which may read like the explanation: the server's progress end says it was answered).
  local ends_before_ask = progress_ends
  api.nvim_input(":%CodeLlamaAsk<CR>" .. args.question .. "<CR>")
  r.ask = t.wait_until("the answer", function()
    local shown = float()
    return progress_ends > ends_before_ask and shown and not shown.title:find("writing") and shown
  end, 30000)
  local whole = { start = { line = 0, character = 0 }, ["end"] = { line = api.nvim_buf_line_count(source), character = 0 } }
  local params = { textDocument = { uri = vim.uri_from_bufnr(source) }, range = whole, question = args.question }
  local direct = vim.lsp.buf_request_sync(source, "codeLlama/explain", params, 20000)
  r.ask_direct = vim.tbl_values(direct)[1].result.markdown

  -- :CodeLlamaTests: the server creates tests/test_<module>.py; it opens in a split, :w saves it.
  api.nvim_input(":CodeLlamaTests<CR>")
  r.tests_window = t.wait_until("the test file's window", function()
    local name = api.nvim_buf_get_name(0)
    return name:find("/tests/test_" .. args.file, 1, true) and vim.fs.basename(name)
  end, 30000)
  api.nvim_input(":w<CR>")
  t.wait_until("the test file written", function() return not vim.bo.modified end)
  r.source_after_tests = table.concat(api.nvim_buf_get_lines(source, 0, -1, true), "\n") .. "\n"
  api.nvim_input("<C-w>p")
  t.wait_until("back in " .. args.file, function() return api.nvim_get_current_buf() == source end)

  -- :CodeLlamaDocstring on the function at the cursor: the server's edit lands in the buffer.
  local before = buffer_text()
  api.nvim_input("gg:CodeLlamaDocstring<CR>")
  r.docstring = t.wait_until("the docstring edit", function()
    return buffer_text() ~= before and buffer_text()
  end, 30000)

  -- Settings changed at run time reach the server (an unknown key: it says so).
  require("code_llama").update_settings({ not_a_setting = 1 })
  r.settings_warning = t.wait_until("the server's settings warning", function()
    return vim.iter(log_messages):find(function(m) return m:find("notASetting", 1, true) end)
  end)

  vim.cmd("checkhealth code_llama")
  r.health = table.concat(api.nvim_buf_get_lines(0, 0, -1, true), "\n")
end, args.watchdog_ms)
