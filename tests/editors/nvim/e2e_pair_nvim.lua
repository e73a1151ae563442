-- End to end in real nvim (headless) with the real server: a suggestion accepted inside a pair
-- that an auto-pairs plugin closed. nvim --headless --clean -u e2e_pair_nvim.lua
-- $CODE_LLAMA_NVIM_ARGS names a JSON file: {plugin, server, model, workspace, file, keys}.
local args = vim.json.decode(table.concat(vim.fn.readfile(os.getenv("CODE_LLAMA_NVIM_ARGS")), "\n"))
package.path = vim.fs.dirname(debug.getinfo(1, "S").source:sub(2)) .. "/?.lua;" .. package.path
local t = require("driver_nvim")

vim.opt.runtimepath:append(args.plugin)
require("code_llama").setup({
  cmd = { args.server, "--stdio" },
  settings = { model = args.model, local_files_only = true, context_enabled = false },
})

-- Typed indentation stays exactly as typed.
vim.cmd("filetype indent off")
vim.o.autoindent = false

local api = vim.api

-- What auto-pairs plugins (nvim-autopairs, mini.pairs) map: "(" inserts "()" and puts the cursor
-- between; ")" before an auto-inserted ")" moves over it instead of inserting another.
vim.keymap.set("i", "(", "()<C-g>U<Left>")
vim.keymap.set("i", ")", function()
  local col = api.nvim_win_get_cursor(0)[2]
  return api.nvim_get_current_line():sub(col + 1, col + 1) == ")" and "<C-g>U<Right>" or ")"
end, { expr = true })

local function buffer_text()
  return table.concat(api.nvim_buf_get_lines(0, 0, -1, true), "\n") .. "\n"
end

t.run(function()
  local r = t.results
  vim.cmd.edit(vim.fs.joinpath(args.workspace, args.file))
  t.wait_until("the server to be ready", function()
    local status = require("code_llama.status").get(0)
    return status and status.state == "ready"
  end, 45000) -- Python imports torch and transformers: slow on a busy machine

  api.nvim_input("i" .. args.keys)
  r.ghost = t.wait_until("ghost text", t.ghost)
  r.typed = buffer_text()
  r.cursor = api.nvim_win_get_cursor(0)

  api.nvim_input("<Tab>")
  r.accepted = t.wait_until("the suggestion to be inserted", function()
    return buffer_text() ~= r.typed and buffer_text()
  end)
  r.cursor_after_accept = api.nvim_win_get_cursor(0)
  r.ghost_after_accept = t.ghost()
end, args.watchdog_ms)
