;;; gpt-lsp.el --- Eglot setup for the gpt-lsp local code assistant  -*- lexical-binding: t; -*-

;; Version: 0.1.0
;; Package-Requires: ((emacs "28.1") (eglot "1.9"))
;; Keywords: languages, tools, completion

;;; Commentary:

;; Registers `gpt-lsp --stdio' with Eglot for the languages gpt-lsp completes, passes your
;; settings (`gpt-lsp-settings') as initializationOptions and workspace configuration, and adds
;; `gpt-lsp-status' and `gpt-lsp-toggle'.  To change settings of a running server, set
;; `eglot-workspace-configuration' (its `:gptLsp' section) and run `eglot-signal-didChangeConfiguration'.  Completions arrive through `completion-at-point'
;; (Corfu/Company show them as you type); Eglot has no inline (ghost-text) completion.
;;
;;   (require 'gpt-lsp)
;;   (add-hook 'python-mode-hook #'eglot-ensure)     ; or M-x eglot in a buffer
;;
;; Eglot runs one server per buffer: registered on its own for python-mode, gpt-lsp replaces your
;; usual Python server there.  To keep both, `gpt-lsp-alongside' registers, for the modes you name,
;; the `rass' multiplexer (pip package rassumfrassum, by Eglot's author) running your server and
;; gpt-lsp behind one Eglot connection:
;;
;;   (gpt-lsp-alongside '(python-mode python-ts-mode) '("pylsp"))

;;; Code:

(require 'cl-lib)
(require 'eglot)
(require 'jsonrpc)

(defgroup gpt-lsp nil
  "Local AI code completion through the gpt-lsp language server."
  :group 'tools
  :prefix "gpt-lsp-")

(defcustom gpt-lsp-command '("gpt-lsp" "--stdio")
  "Command that starts the server; add \"--model\" DIR or \"--log-file\" PATH as needed."
  :type '(repeat string))

(defcustom gpt-lsp-settings nil
  "Server settings as a plist of camelCase keys, e.g.
\\='(:generation (:maxTokensLine 32) :model (:variant \"int8\")).
Sent as initializationOptions when the server starts."
  :type 'sexp)

(defcustom gpt-lsp-modes
  '(python-mode python-ts-mode
    (js-mode :language-id "javascript") (js-ts-mode :language-id "javascript")
    (typescript-mode :language-id "typescript") (typescript-ts-mode :language-id "typescript")
    (tsx-ts-mode :language-id "typescriptreact")
    go-mode go-ts-mode rust-mode rust-ts-mode java-mode java-ts-mode
    c-mode c-ts-mode (c++-mode :language-id "cpp") (c++-ts-mode :language-id "cpp"))
  "Major modes (Eglot mode specs) that gpt-lsp serves."
  :type '(repeat sexp))

(defun gpt-lsp--contact (&optional _interactive)
  "The Eglot contact: `gpt-lsp-command' plus initializationOptions."
  (append gpt-lsp-command
          (list :initializationOptions (or gpt-lsp-settings (make-hash-table)))))

;;;###autoload
(defun gpt-lsp-register ()
  "Add gpt-lsp to `eglot-server-programs' (done when this file is loaded)."
  (setf (alist-get gpt-lsp-modes eglot-server-programs nil nil #'equal) #'gpt-lsp--contact))

(defcustom gpt-lsp-rass-command '("rass")
  "The rassumfrassum multiplexer (`pip install rassumfrassum'), used by `gpt-lsp-alongside'."
  :type '(repeat string))

(defun gpt-lsp--alongside-contact (main-command)
  "An Eglot contact running MAIN-COMMAND and gpt-lsp behind `rass'.
rass sends the client's initializationOptions to every server, but
a `rass' key maps a regexp on a server's name (its program's file
name, with #N for the Nth server after the first) to options for
that server only: gpt-lsp's settings reach gpt-lsp alone."
  (let ((options (make-hash-table :test #'equal))
        (per-server (make-hash-table :test #'equal)))
    (puthash (format "^%s#1$" (regexp-quote (file-name-nondirectory (car gpt-lsp-command))))
             (or gpt-lsp-settings (make-hash-table)) per-server)
    (puthash "rass" per-server options)
    (append gpt-lsp-rass-command (list "--") main-command (list "--") gpt-lsp-command
            (list :initializationOptions options))))

;;;###autoload
(defun gpt-lsp-alongside (modes main-command)
  "Serve MODES with MAIN-COMMAND (your usual server) and gpt-lsp.
Eglot manages one server per buffer, so both run behind the `rass'
multiplexer: completions from both are merged, diagnostics too, and
other requests go to the first server supporting them (MAIN-COMMAND).
MODES is a list of major modes (or Eglot mode specs)."
  (setf (alist-get modes eglot-server-programs nil nil #'equal)
        (lambda (&optional _interactive) (gpt-lsp--alongside-contact main-command))))

(defun gpt-lsp--server ()
  (or (eglot-current-server) (user-error "gpt-lsp: no server in this buffer (M-x eglot)")))

(defun gpt-lsp--exec (command)
  (jsonrpc-request (gpt-lsp--server) :workspace/executeCommand
                   (list :command command :arguments [])))

;;;###autoload
(defun gpt-lsp-status ()
  "Show the server's state, model and last reason."
  (interactive)
  (let ((status (gpt-lsp--exec "gpt-lsp.status")))
    (message "gpt-lsp: %s (%s) model %s"
             (plist-get status :state) (plist-get status :reason) (plist-get status :model))
    status))

;;;###autoload
(defun gpt-lsp-toggle ()
  "Turn AI suggestions on or off in the running server; return the new state."
  (interactive)
  (let ((enabled (eq (gpt-lsp--exec "gpt-lsp.toggle") t)))
    (message "gpt-lsp: AI suggestions %s" (if enabled "enabled" "disabled"))
    enabled))

(defvar gpt-lsp-last-status nil "Params of the last gpt-lsp/status notification (a plist).")

(cl-defmethod eglot-handle-notification (_server (_method (eql gpt-lsp/status)) &rest params)
  "Remember the server's status (shown by `gpt-lsp-status')."
  (setq gpt-lsp-last-status params)
  (when (member (plist-get params :state) '("error"))
    (message "gpt-lsp: %s" (plist-get params :reason))))

(gpt-lsp-register)

(provide 'gpt-lsp)
;;; gpt-lsp.el ends here
