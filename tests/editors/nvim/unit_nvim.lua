-- The plugin's own logic, in real nvim without a server: nvim --headless --clean -u unit_nvim.lua
-- $CODE_LLAMA_NVIM_ARGS names a JSON file: {plugin, readme_spec, server_keys}. Results: {case name: "ok" | error text}.
local args = vim.json.decode(table.concat(vim.fn.readfile(os.getenv("CODE_LLAMA_NVIM_ARGS")), "\n"))
package.path = vim.fs.dirname(debug.getinfo(1, "S").source:sub(2)) .. "/?.lua;" .. package.path
local t = require("driver_nvim")
vim.opt.runtimepath:append(args.plugin)

local api = vim.api
local config = require("code_llama.config")
local ghost = require("code_llama.ghost")
local inline = require("code_llama.inline")

local function eq(got, want, what)
  if not vim.deep_equal(got, want) then
    error(("%s: got %s, want %s"):format(what or "value", vim.inspect(got), vim.inspect(want)), 2)
  end
end

--- Stands in for an LSP client: records requests and cancellations, answers when told to.
local function fake_client()
  local client = { offset_encoding = "utf-16", requests = {}, cancelled = {} }
  function client:request(method, params, handler, bufnr)
    self.requests[#self.requests + 1] = { method = method, params = params, handler = handler, bufnr = bufnr }
    return true, #self.requests
  end
  function client:cancel_request(id)
    self.cancelled[#self.cancelled + 1] = id
  end
  return client
end

local shown = t.ghost

local function lines()
  return api.nvim_buf_get_lines(0, 0, -1, true)
end

--- A fresh buffer holding `text` in insert mode at (row, col), with a session on a fake client.
local function fresh(text, row, col, debounce_ms)
  if api.nvim_get_mode().mode ~= "n" then
    api.nvim_input("<Esc>")
    t.wait_until("normal mode", function() return api.nvim_get_mode().mode == "n" end)
  end
  vim.cmd("enew!")
  local buf = api.nvim_get_current_buf()
  api.nvim_buf_set_lines(buf, 0, -1, true, vim.split(text, "\n", { plain = true }))
  local client = fake_client()
  local session = inline.attach(buf, client, { debounce_ms = debounce_ms or 30 })
  api.nvim_input("i")
  t.wait_until("insert mode", function() return api.nvim_get_mode().mode == "i" end)
  api.nvim_win_set_cursor(0, { row + 1, col })
  return buf, client, session
end

--- Answer request `n` of `client` with `items` (InlineCompletionItem list).
local function answer(client, n, items)
  client.requests[n].handler(nil, { items = items })
end

local function item(text, row, col, end_col)
  return { insertText = text, range = { start = { line = row, character = col },
                                        ["end"] = { line = row, character = end_col or col } } }
end

local cases = {}
local order = {}
local function case(name, fn)
  order[#order + 1] = name
  cases[name] = fn
end

case("settings map to initializationOptions", function()
  local settings = { model = "/m", max_new_tokens = 32, localFilesOnly = true, kv_cache_mb = 0,
                     enabled_languages = { "python", "rust" }, fim_mode = "spm" }
  local want = { model = "/m", maxNewTokens = 32, localFilesOnly = true, kvCacheMb = 0,
                 enabledLanguages = { "python", "rust" }, fimMode = "spm" }
  eq(config.server_settings(settings), want, "server_settings")
  local cfg = config.merge({ cmd = { "/venv/bin/code-llama-ls" }, settings = settings, keymaps = { accept = false } })
  local lsp = require("code_llama").lsp_config(cfg)
  eq(lsp.init_options, want, "init_options")
  eq(lsp.cmd, { "/venv/bin/code-llama-ls" }, "cmd replaces the default list")
  eq(lsp.name, "code_llama", "name")
  eq(lsp.capabilities.textDocument.inlineCompletion ~= nil, true, "inlineCompletion capability declared")
  eq(lsp.capabilities.textDocument.synchronization ~= nil, true, "nvim's default capabilities kept")
  eq(cfg.keymaps.accept, false, "a key turned off")
  eq(cfg.keymaps.accept_word, "<M-Right>", "other keys keep their defaults")
end)

case("the README's lazy.nvim spec sets up the plugin with settings the server knows", function()
  local spec = assert(loadstring("return " .. args.readme_spec))()
  eq(spec.main, "code_llama", "main module")
  eq(spec.dir:sub(-#"/editors/nvim"), "/editors/nvim", "dir")
  for key in pairs(spec.opts) do
    eq(config.defaults[key] ~= nil, true, "option " .. key .. " exists")
  end
  local known = {}
  for _, key in ipairs(args.server_keys) do
    known[key] = true
  end
  for key in pairs(require("code_llama").lsp_config(config.merge(spec.opts)).init_options) do
    eq(known[key], true, "server setting " .. key)
  end
end)

case("multi-line ghost text: first line inline, the rest as virtual lines", function()
  local buf = api.nvim_create_buf(false, true)
  api.nvim_buf_set_lines(buf, 0, -1, true, { "def total(items):", "    result = 0", "    ", "    return result" })
  ghost.show(buf, 2, 4, "for item in items:\n        result += item\n")
  local marks = api.nvim_buf_get_extmarks(buf, ghost.ns, 0, -1, { details = true })
  eq(#marks, 1, "one extmark")
  local _, row, col, details = unpack(marks[1])
  eq({ row, col }, { 2, 4 }, "at the cursor")
  eq(details.virt_text_pos, "inline", "first line inline")
  eq(details.virt_text[1][1], "for item in items:", "first line")
  eq(vim.tbl_map(function(l) return l[1][1] end, details.virt_lines), { "        result += item", "" }, "virtual lines")
  eq(details.virt_text[1][2], "CodeLlamaGhost", "highlight")
  ghost.clear(buf)
  eq(#api.nvim_buf_get_extmarks(buf, ghost.ns, 0, -1, {}), 0, "cleared")
end)

case("ghost text does not draw the closers it replaces twice", function()
  local buf = api.nvim_create_buf(false, true)
  api.nvim_buf_set_lines(buf, 0, -1, true, { "def area(w, h):", "    return max()" })
  ghost.show(buf, 1, 15, "w, h)", 1)
  local _, _, _, details = unpack(api.nvim_buf_get_extmarks(buf, ghost.ns, 0, -1, { details = true })[1])
  eq(details.virt_text[1][1], "w, h", "the buffer's own ) shows after it")
  ghost.show(buf, 1, 15, "w, h) + 1\n    pass", 1)
  _, _, _, details = unpack(api.nvim_buf_get_extmarks(buf, ghost.ns, 0, -1, { details = true })[1])
  eq(details.virt_text[1][1], "w, h) + 1", "a first line that does not end with the closer is drawn whole")
  ghost.show(buf, 1, 15, "w, h)", 0)
  _, _, _, details = unpack(api.nvim_buf_get_extmarks(buf, ghost.ns, 0, -1, { details = true })[1])
  eq(details.virt_text[1][1], "w, h)", "nothing replaced: drawn whole")
  ghost.clear(buf)
end)

case("the parts that accepting a word or a line takes", function()
  local text = "for item in items:\n        result += item"
  eq(ghost.part(text, "word"), "for", "word")
  eq(ghost.part(" in items:", "word"), " in", "word after a space")
  eq(ghost.part(":\n        result", "word"), ":", "punctuation")
  eq(ghost.part("\n        result += item", "word"), "\n        result", "word on the next line")
  eq(ghost.part(text, "line"), "for item in items:", "line")
  eq(ghost.part("\n        result += item", "line"), "\n        result += item", "the next line")
  eq(ghost.part(text, "all"), text, "all")
end)

case("accept word, line, then all of a multi-line suggestion", function()
  local text = "for item in items:\n        result += item\n    print(result)"
  local _, client, session = fresh("def total(items):\n    result = 0\n    \n    return result", 2, 4)
  session:request(inline.INVOKED)
  eq(client.requests[1].params.position, { line = 2, character = 4 }, "position")
  eq(client.requests[1].params.context.triggerKind, inline.INVOKED, "trigger kind")
  answer(client, 1, { item(text, 2, 4) })
  eq(shown().text, text, "shown")
  eq(session:accept("word"), true, "accept word")
  eq(lines()[3], "    for", "after a word")
  t.wait_until("typed-through remainder", function() return shown() and shown().text == text:sub(4) end)
  session:accept("line")
  eq(lines()[3], "    for item in items:", "after a line")
  t.wait_until("the next line", function() return shown() and shown().text == text:sub(19) end)
  session:accept("word")
  eq({ lines()[3], lines()[4] }, { "    for item in items:", "        result" }, "a word on the next line")
  eq(api.nvim_win_get_cursor(0), { 4, 14 }, "cursor after it")
  eq(#client.requests, 1, "partial accepts asked for nothing new")
  session:accept("all")
  eq(lines(), { "def total(items):", "    result = 0", "    for item in items:", "        result += item",
                "    print(result)", "    return result" }, "after all")
  eq(api.nvim_win_get_cursor(0), { 5, 17 }, "cursor at its end")
  eq(shown(), nil, "nothing left")
  t.wait_until("the next suggestion asked for", function() return #client.requests == 2 end)
  eq(client.requests[2].params.position, { line = 4, character = 17 }, "at the end of the inserted text")
end)

case("accepting replaces the closing bracket the item's range covers", function()
  local _, client, session = fresh("path = os.path.join()", 0, 20)
  session:request(inline.INVOKED)
  answer(client, 1, { item("base, name)", 0, 20, 21) })
  session:accept("all")
  eq(lines(), { "path = os.path.join(base, name)" }, "no doubled bracket")
end)

case("typing through a suggestion shows the rest without a request", function()
  local _, client, session = fresh("def add(a, b):\n    ", 1, 4, 30)
  session:request(inline.INVOKED)
  answer(client, 1, { item("return a + b", 1, 4) })
  api.nvim_input("ret")
  t.wait_until("the rest", function() return shown() and shown().text == "urn a + b" end)
  t.sleep(100)
  eq(#client.requests, 1, "no request while typing through")
  api.nvim_input("x")
  t.wait_until("a new request", function() return #client.requests == 2 end)
  eq(shown(), nil, "a different character drops the suggestion")
  eq(client.requests[2].params.position, { line = 1, character = 8 }, "asked at the new cursor")
  eq(client.requests[2].params.context.triggerKind, inline.AUTOMATIC, "automatic")
end)

case("debounce: one request after a burst of keystrokes", function()
  local _, client = fresh("", 0, 0, 300) -- long enough that a busy machine keeps the keys a burst
  for _, key in ipairs({ "i", "m", "p", "o" }) do
    api.nvim_input(key)
    t.sleep(25)
  end
  eq(#client.requests, 0, "none during the burst")
  t.wait_until("the request", function() return #client.requests == 1 end)
  t.sleep(400)
  eq(#client.requests, 1, "exactly one")
  eq(client.requests[1].params.position, { line = 0, character = 4 }, "for the last state")
  eq(client.requests[1].method, "textDocument/inlineCompletion", "method")
end)

case("a keystroke cancels the request in flight; its late answer is dropped", function()
  local _, client = fresh("x = ", 0, 4, 30)
  api.nvim_input("a")
  t.wait_until("first request", function() return #client.requests == 1 end)
  api.nvim_input("b")
  t.wait_until("cancel", function() return client.cancelled[1] == 1 end)
  t.wait_until("second request", function() return #client.requests == 2 end)
  answer(client, 1, { item("stale", 0, 5) })
  eq(shown(), nil, "the stale answer is not shown")
  answer(client, 2, { item(" + 1", 0, 6) })
  eq(shown() and shown().text, " + 1", "the current answer is shown")
  eq(client.cancelled, { 1 }, "only the stale request was cancelled")
end)

case("moving the cursor or leaving insert mode dismisses", function()
  local _, client, session = fresh("abc = ", 0, 6, 30)
  session:request(inline.INVOKED)
  answer(client, 1, { item("1", 0, 6) })
  eq(shown().text, "1", "shown")
  api.nvim_input("<Left>")
  t.wait_until("dismissed by a move", function() return shown() == nil end)
  session:request(inline.INVOKED)
  answer(client, 2, { item("2", 0, 5) })
  eq(shown().text, "2", "shown again")
  api.nvim_input("<Esc>")
  t.wait_until("dismissed on leaving insert mode", function() return shown() == nil end)
  eq(session:accept("all"), false, "nothing to accept")
end)

case("explain: the float streams the answer; closing it cancels the request", function()
  local util = require("code_llama.util")
  local actions = require("code_llama.actions")
  local client = fake_client()
  local attached = util.client
  util.client = function() return client end -- the buffer's LSP client, for this case only
  local ok, err = pcall(function()
    fresh("def f():\n    return 1", 0, 0)
    api.nvim_input("<Esc>")
    t.wait_until("normal mode", function() return api.nvim_get_mode().mode == "n" end)
    local range = actions.line_range(0, 1, 2, "utf-16")
    eq(range, { start = { line = 0, character = 0 }, ["end"] = { line = 2, character = 0 } }, "whole lines")
    vim.bo.eol = false
    eq(actions.line_range(0, 1, 2, "utf-16")["end"], { line = 1, character = 12 }, "no final line break")
    actions.explain(range)
    eq({ client.requests[1].method, client.requests[1].params.range }, { "codeLlama/explain", range }, "request")
    eq(t.float().title, " Code Llama (writing…) ", "writing")
    actions.on_partial(nil, { token = "code-llama-explain-1", delta = "It", done = false })
    eq(t.float().text, "It", "partial answer")
    actions.on_partial(nil, { token = "code-llama-explain-1", delta = " returns", done = false })
    eq(t.float().text, "It returns", "deltas are appended")
    actions.on_partial(nil, { token = "code-llama-docstring-2", delta = "other", done = false })
    actions.on_partial(nil, { token = "code-llama-explain-0", delta = "stale", done = false })
    eq(t.float().text, "It returns", "another action's or an older request's deltas are not shown")
    client.requests[1].handler(nil, { markdown = "It returns **1**." })
    eq(t.float(), { text = "It returns **1**.", title = " Code Llama ", filetype = "markdown" }, "answer")
    actions.explain(range, "Why?")
    eq(client.requests[2].params.question, "Why?", "question")
    actions.close()
    eq(client.cancelled, { 2 }, "closing cancels the answer being written")
    eq(t.float(), nil, "closed")
    client.requests[2].handler(nil, { markdown = "late" })
    eq(t.float(), nil, "a late answer does not reopen it")
  end)
  util.client = attached
  assert(ok, err)
end)

case("next and previous candidate", function()
  local _, client, session = fresh("x = ", 0, 4)
  session:request(inline.INVOKED)
  answer(client, 1, { item("1", 0, 4), item("2", 0, 4), item("3", 0, 4) })
  eq(shown().text, "1", "first")
  session:cycle(1)
  eq(shown().text, "2", "next")
  session:cycle(-1)
  session:cycle(-1)
  eq(shown().text, "3", "previous wraps around")
  eq(shown().marks, 1, "one candidate on screen")
  session:accept("all")
  eq(lines(), { "x = 3" }, "the shown candidate is inserted")
end)

case("help: its tags build and cover every command and option", function()
  require("code_llama").setup({ cmd = { "code-llama-ls-not-started" }, filetypes = { "none" } })
  local dir = vim.fn.tempname()
  vim.fn.mkdir(dir, "p")
  vim.fn.writefile(vim.fn.readfile(args.plugin .. "/doc/code_llama.txt"), dir .. "/code_llama.txt")
  vim.cmd.helptags(dir) -- a duplicate or malformed tag raises an error
  local tags = table.concat(vim.fn.readfile(dir .. "/tags"), "\n")
  local help = table.concat(vim.fn.readfile(dir .. "/code_llama.txt"), "\n")
  local commands = vim.tbl_filter(function(name) return name:find("^CodeLlama") end,
                                  vim.tbl_keys(api.nvim_get_commands({})))
  eq(#commands, 6, "commands")
  for _, name in ipairs(commands) do
    eq(tags:find(":" .. name .. "\t", 1, true) ~= nil, true, ":" .. name .. " has a help tag")
  end
  for key in pairs(config.defaults) do
    eq(help:find("\n" .. key .. " ~\n", 1, true) ~= nil, true, "option " .. key .. " is documented")
  end
end)

case("with nvim's own inline completion (0.12+) accept and cycle use it", function()
  local plugin = require("code_llama") -- set up by the case before
  local calls = {}
  vim.lsp.inline_completion = { -- stands in for 0.12's module (this nvim is 0.11)
    get = function() calls[#calls + 1] = { "get" } return true end,
    select = function(opts) calls[#calls + 1] = { "select", opts.count } end,
  }
  local ok, err = pcall(function()
    eq(plugin.native(), true, "used where it exists")
    eq(plugin.accept(), true, "accept")
    eq(plugin.accept("word"), false, "no partial accept there: the key passes through")
    eq(plugin.cycle(-1), true, "previous")
    eq(calls, { { "get" }, { "select", -1 } }, "calls")
    plugin.config.native = false
    eq(plugin.native(), false, "native = false keeps this plugin's ghost text")
  end)
  vim.lsp.inline_completion = nil
  plugin.config.native = "auto"
  assert(ok, err)
end)

case("checkhealth reports a client whose server has not answered initialize yet", function()
  -- A server that reads its input and never answers: the client stays uninitialized, as while
  -- the real server imports torch.
  require("code_llama").setup({ cmd = { "sh", "-c", "exec cat >/dev/null" }, filetypes = { "python" } })
  local file = vim.fn.tempname() .. "_starting.py"
  vim.cmd.edit(file)
  local buf = api.nvim_get_current_buf()
  local client = t.wait_until("the client to start", function()
    local found = vim.lsp.get_clients({ name = "code_llama", _uninitialized = true })[1]
    return found and found.attached_buffers[buf] and found
  end)
  local ok, err = pcall(function()
    vim.cmd("checkhealth code_llama")
    local report = table.concat(api.nvim_buf_get_lines(0, 0, -1, true), "\n")
    vim.cmd("bwipeout")
    eq(report:find("no code_llama client is running", 1, true), nil, "no warning: " .. report)
    eq(report:find(("client %d attached to %s"):format(client.id, vim.fs.basename(file)), 1, true) ~= nil, true,
       "the client and its buffer: " .. report)
    eq(report:find("server starting: it has not answered initialize yet", 1, true) ~= nil, true, "starting: " .. report)
  end)
  client:stop(true)
  assert(ok, err)
end)

t.run(function()
  for _, name in ipairs(order) do
    local ok, err = pcall(cases[name])
    t.results[name] = ok and "ok" or tostring(err)
  end
end, args.watchdog_ms)
