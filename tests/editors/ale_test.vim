" Driven by tests/editors/test_vim.py: vim -N -u NONE -i NONE -n -es -S ale_test.vim
" Loads ALE + editors/vim, opens a file, asks ALE for completions, sends commands through ALE's
" LSP connection, and writes what came back to $GPT_LSP_OUT (JSON).
set nocompatible
let g:R = {'steps': []}
function! Save() abort
  call writefile([json_encode(g:R)], $GPT_LSP_OUT)
endfunction
function! WaitFor(expr, ms) abort
  let l:waited = 0
  while !eval(a:expr) && l:waited < a:ms
    sleep 50m
    let l:waited += 50
  endwhile
  return eval(a:expr)
endfunction

try
  let g:ale_completion_enabled = 1
  let g:ale_linters_explicit = 1
  let g:ale_linters = {'python': ['gpt_lsp']}
  let g:ale_lint_on_enter = 1
  let g:ale_set_signs = 0
  let g:ale_echo_cursor = 0
  let g:gpt_lsp_executable = $GPT_LSP_SERVER
  let g:gpt_lsp_args = ['--model', $GPT_LSP_MODEL, '--log-file', $GPT_LSP_LOG]
  let g:gpt_lsp_settings = {'generation': {'timeoutMs': 5000}}
  execute 'set runtimepath^=' . fnameescape($GPT_LSP_ALE_DIR)
  execute 'set runtimepath^=' . fnameescape($GPT_LSP_VIM_DIR)
  filetype plugin on
  runtime plugin/ale.vim
  runtime plugin/gpt_lsp.vim
  let g:R.vim = v:version
  let g:R.has_commands = exists(':GptLspStatus') == 2 && exists(':GptLspToggle') == 2 ? v:true : v:false

  execute 'edit ' . fnameescape($GPT_LSP_FILE)
  let g:R.filetype = &filetype
  let g:R.linters = map(ale#linter#Get(&filetype), 'v:val.name')

  " Wait for the model: poll gpt-lsp.status through ALE's connection until it says ready.
  let g:status = {}
  function! OnStatus(response) abort
    let g:status = get(a:response, 'result', {})
  endfunction
  let g:tries = 0
  while get(g:status, 'state', '') isnot# 'ready' && g:tries < 300
    call ale#lsp_linter#SendRequest(bufnr(''), 'gpt_lsp',
          \ [0, 'workspace/executeCommand', {'command': 'gpt-lsp.status', 'arguments': []}], function('OnStatus'))
    sleep 200m
    let g:tries += 1
  endwhile
  let g:R.status = g:status

  " ALE's own completion: the server's items parsed into Vim complete-items.
  let g:completions = v:null
  function! OnCompletions(items) abort
    let g:completions = a:items
  endfunction
  let [g:line, g:col] = [str2nr($GPT_LSP_LINE), str2nr($GPT_LSP_COL)]
  " ALE only accepts a completion answer in insert mode; vim -es cannot be in insert mode, so
  " report 'i' (ALE's own tests mock ale#util#Mode the same way).
  runtime autoload/ale/util.vim
  function! ale#util#Mode(...) abort
    return 'i'
  endfunction
  call cursor(g:line + 1, 1)
  call ale#completion#GetCompletions('ale-callback', {'callback': function('OnCompletions'),
        \ 'line': g:line + 1, 'column': g:col + 1, 'prefix': ''})
  call WaitFor('g:completions isnot v:null', 20000)
  let g:R.completions = g:completions

  " Raw inline completion through the same connection.
  let g:inline = v:null
  function! OnInline(response) abort
    let g:inline = a:response
  endfunction
  call ale#lsp_linter#SendRequest(bufnr(''), 'gpt_lsp', [0, 'textDocument/inlineCompletion',
        \ {'textDocument': {'uri': ale#util#ToURI(expand('%:p'))}, 'position': {'line': g:line, 'character': g:col},
        \  'context': {'triggerKind': 1}}], function('OnInline'))
  call WaitFor('g:inline isnot v:null', 20000)
  let g:R.inline = get(g:inline, 'result', g:inline)

  " :GptLspToggle twice.
  let g:gpt_lsp_last_result = v:null
  GptLspToggle
  call WaitFor('g:gpt_lsp_last_result isnot v:null', 10000)
  let g:R.toggle_off = g:gpt_lsp_last_result
  let g:gpt_lsp_last_result = v:null
  GptLspToggle
  call WaitFor('g:gpt_lsp_last_result isnot v:null', 10000)
  let g:R.toggle_on = g:gpt_lsp_last_result

  " Diagnostics on a syntax error (ALE lints on save/enter).
  call setline(1, ['def f(:', '    return 1'])
  write
  ALELint
  call WaitFor('len(ale#engine#GetLoclist(bufnr("")))', 5000)
  let g:R.diagnostics = len(ale#engine#GetLoclist(bufnr('')))
  let g:R.done = v:true
catch
  let g:R.error = v:exception . ' @ ' . v:throwpoint
endtry
call Save()
call ale#lsp#StopAll()
qall!
