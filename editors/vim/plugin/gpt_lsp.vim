" gpt-lsp for Vim 9 / Vim 8.2 with ALE (https://github.com/dense-analysis/ale).
" Registers the `gpt_lsp` LSP linter for the languages gpt-lsp completes. ALE then shows its
" diagnostics and, with g:ale_completion_enabled = 1 (set before ALE loads), its completions.
" Vim has no inline (ghost-text) completion through ALE.
"
"   let g:ale_completion_enabled = 1
"   let g:gpt_lsp_executable = 'gpt-lsp'                         " default
"   let g:gpt_lsp_args = ['--model', '/path/to/model']           " optional
"   let g:gpt_lsp_settings = {'generation': {'maxTokensLine': 32}} " initializationOptions
"   packadd ale  (or your plugin manager)  and put this directory on 'runtimepath'
"
" Commands: :GptLspStatus, :GptLspToggle (through the running server).
if exists('g:loaded_gpt_lsp')
  finish
endif
let g:loaded_gpt_lsp = 1

let g:gpt_lsp_filetypes = get(g:, 'gpt_lsp_filetypes',
      \ ['python', 'javascript', 'javascriptreact', 'typescript', 'typescriptreact', 'go', 'rust', 'java', 'c', 'cpp'])

function! s:Executable(buffer) abort
  return get(g:, 'gpt_lsp_executable', 'gpt-lsp')
endfunction

function! s:Command(buffer) abort
  let l:args = map(copy(get(g:, 'gpt_lsp_args', [])), 'ale#Escape(v:val)')
  return '%e --stdio' . (empty(l:args) ? '' : ' ' . join(l:args, ' '))
endfunction

function! s:ProjectRoot(buffer) abort
  for l:marker in ['.git', 'pyproject.toml', 'package.json', 'go.mod', 'Cargo.toml', 'pom.xml']
    let l:found = ale#path#FindNearestFile(a:buffer, l:marker)
    if empty(l:found)
      let l:found = ale#path#FindNearestDirectory(a:buffer, l:marker)
    endif
    if !empty(l:found)
      return fnamemodify(l:found, ':h' . (l:marker is# '.git' ? ':h' : ''))
    endif
  endfor
  return fnamemodify(bufname(a:buffer), ':p:h')
endfunction

function! s:Language(buffer) abort
  let l:ft = getbufvar(a:buffer, '&filetype')
  return l:ft
endfunction

for s:ft in g:gpt_lsp_filetypes
  call ale#linter#Define(s:ft, {
        \ 'name': 'gpt_lsp',
        \ 'lsp': 'stdio',
        \ 'executable': function('s:Executable'),
        \ 'command': function('s:Command'),
        \ 'project_root': function('s:ProjectRoot'),
        \ 'language': function('s:Language'),
        \ 'initialization_options': {b -> get(g:, 'gpt_lsp_settings', {})},
        \ 'lsp_config': {b -> {'gptLsp': get(g:, 'gpt_lsp_settings', {})}},
        \})
endfor

let g:gpt_lsp_last_result = v:null
function! s:Exec(command) abort
  let l:message = [0, 'workspace/executeCommand', {'command': a:command, 'arguments': []}]
  call ale#lsp_linter#SendRequest(bufnr(''), 'gpt_lsp', l:message, function('s:Show', [a:command]))
endfunction

function! s:Show(command, response) abort
  let g:gpt_lsp_last_result = get(a:response, 'result', a:response)
  if a:command is# 'gpt-lsp.toggle'
    echomsg 'gpt-lsp: AI suggestions ' . (g:gpt_lsp_last_result is v:true ? 'enabled' : 'disabled')
  else
    echomsg 'gpt-lsp: ' . string(g:gpt_lsp_last_result)
  endif
endfunction

command! GptLspStatus call s:Exec('gpt-lsp.status')
command! GptLspToggle call s:Exec('gpt-lsp.toggle')
