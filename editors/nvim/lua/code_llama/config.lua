-- Options of require("code_llama").setup() and their mapping to the server's settings.
local M = {}

M.defaults = {
  -- How to start the server; any argv list (e.g. { "/path/to/venv/bin/code-llama-ls", "--stdio" }).
  cmd = { "code-llama-ls", "--stdio" },
  filetypes = { "python", "javascript", "javascriptreact", "typescript", "typescriptreact", "rust", "go",
                "java", "c", "cpp" },
  -- The workspace root is the nearest folder holding one of these (else the file's folder).
  root_markers = { ".git", "pyproject.toml", "setup.py", "package.json", "Cargo.toml", "go.mod", "pom.xml" },
  -- Server settings (README "Settings"): snake_case or camelCase keys, sent as camelCase.
  settings = {},
  -- Ghost text while typing; false: only when triggered by hand.
  auto_trigger = true,
  -- Wait for a pause in typing before asking the server (it debounces too, see debounceMs).
  debounce_ms = 75,
  -- "auto": nvim's own vim.lsp.inline_completion where it exists (0.12+); false: always this plugin's.
  native = "auto",
  -- Insert-mode keys; false leaves a key unmapped. Without a suggestion a key does what it did.
  keymaps = {
    accept = "<Tab>",
    accept_line = "<M-C-Right>",
    accept_word = "<M-Right>",
    dismiss = "<C-]>",
    trigger = "<M-\\>",
    next = "<M-]>",
    prev = "<M-[>",
  },
  -- The :CodeLlamaExplain / :CodeLlamaAsk window.
  float = { border = "rounded", max_width = 90, max_height = 30 },
}

--- "max_new_tokens" -> "maxNewTokens"; camelCase keys pass unchanged.
function M.camel(key)
  return (key:gsub("_(%l)", string.upper))
end

--- The settings table the server reads (initializationOptions, settings.codeLlama).
function M.server_settings(settings)
  local out = {}
  for key, value in pairs(settings or {}) do
    out[M.camel(key)] = value
  end
  return out
end

function M.merge(user)
  -- Lists (cmd, filetypes, ...) replace the default rather than merge with it.
  return vim.tbl_deep_extend("force", vim.deepcopy(M.defaults), user or {})
end

return M
