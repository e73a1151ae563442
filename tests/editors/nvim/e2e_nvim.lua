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
local ns = require("code_llama.ghost").ns

local function ghost()
  local marks = api.nvim_buf_get_extmarks(0, ns, 0, -1, { details = true })
  if not marks[1] then
    return nil
  end
  local _, row, col, details = unpack(marks[1])
  local lines = { details.virt_text[1][1] }
  for _, virt_line in ipairs(details.virt_lines or {}) do
    lines[#lines + 1] = virt_line[1][1]
  end
  return { row = row, col = col, text = table.concat(lines, "\n"), marks = #marks, pos = details.virt_text_pos }
end

local function buffer_text()
  return table.concat(api.nvim_buf_get_lines(0, 0, -1, true), "\n") .. "\n"
end

--- The floating window the user sees: its text, title and filetype.
local function float()
  for _, win in ipairs(api.nvim_list_wins()) do
    local config = api.nvim_win_get_config(win)
    if config.relative ~= "" then
      local buf = api.nvim_win_get_buf(win)
      return { text = table.concat(api.nvim_buf_get_lines(buf, 0, -1, true), "\n"), filetype = vim.bo[buf].filetype,
               title = config.title and config.title[1][1] }
    end
  end
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
  local params = { textDocument = { uri = vim.uri_from_bufnr(source) }, question = args.question,
                   range = { start = { line = 0, character = 0 }, ["end"] = { line = api.nvim_buf_line_count(source), character = 0 } } }
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

  vim.cmd("checkhealth code_llama")
  r.health = table.concat(api.nvim_buf_get_lines(0, 0, -1, true), "\n")
end, args.watchdog_ms)
