// Help texts. Every command answers --help; exit codes: 0 success, 1 a finding, 2 misuse.

export const MAIN_HELP = `labelgate: a security gateway in front of Label Studio

Usage: labelgate <command> [options]

Commands:
  serve     [--config FILE]                  run the gateway
  check     [--config FILE]                  validate the configuration and the policies
  token     create|register|list|revoke      manage API tokens
  user      set|disable|enable|list          manage user role bindings
  policy    test|explain|diff                test, explain and compare role policies

Options for every command:
  --config FILE   the gateway configuration (default: $LABELGATE_CONFIG, else ./gateway.yaml)
  --help          show help for the command

Exit codes: 0 success, 1 a problem was found (invalid configuration, unknown id...), 2 misuse.
Run 'labelgate <command> --help' for a command's options.
`

export const SERVE_HELP = `Usage: labelgate serve [--config FILE]

Runs the gateway: HTTPS on server.port, an optional redirect port, tokens checked in the identity
store, every request decided by the role policies in policies.dir. Refuses to start, listing every
problem with file:line:col, when the configuration or a policy is invalid.
`

export const CHECK_HELP = `Usage: labelgate check [--config FILE]

Validates the configuration and every policy file without starting anything. Prints each problem
as file:line:col /path: message, then exits 1; prints "ok" and exits 0 when there is none.
`

export const TOKEN_HELP = `Usage: labelgate token <create|register|list|revoke> [options]

  create --user U [--expires 90d] [--upstream-token-stdin]
      Makes a new gateway token for user U and prints it once; only its SHA-256 digest is kept.
      With --upstream-token-stdin, reads U's Label Studio token from standard input and keeps it
      sealed (AES-256-GCM, key from identity.encryption_key), to be sent upstream in its place.
  register --user U [--expires 90d]
      Reads an existing Label Studio token from standard input and accepts it as U's token; it is
      forwarded to Label Studio unchanged. Only its digest is kept.
  list [--json]
      Shows id, user, kind, created, expiry, state and last four characters; never a token.
  revoke ID
      Revokes a token; every replica refuses it from the next request on.

--expires: a whole number with a unit (ms, s, m, h or d: 90d, 12h), or never. Without it, a token
lasts identity.token_lifetime (90d unless configured).
Only 'token create' reads identity.encryption_key; the other commands run without it.
`

export const USER_HELP = `Usage: labelgate user <set|disable|enable|list> [options]

  set U --role R [--projects 1,2 | --projects all | --projects none]
      Binds user U (a Label Studio e-mail or id) to role R, which must have a file in policies.dir.
      A role whose policy says "projects: bound" needs --projects: U then reaches only those
      projects (or all of them). Applies to every token of U from the next request on.
  disable U     refuses every token of U until 'user enable U'
  enable U      lifts 'user disable'
  list [--json] shows every binding
`

export const POLICY_HELP = `Usage: labelgate policy <test|explain|diff> [options]

  test CASES... [--config FILE]
      Runs reviewers' case files (YAML files or folders of them) against the policies of the
      configuration: each case is a request (role, method, path, headers, body, and optionally the
      caller's projects and the objects' projects) with the expected decision, error code,
      refused fields, forwarded body and filtered response. Prints each
      failure with its file and line, then "N passed, N failed"; exits 1 on any failure.
  explain --role ROLE METHOD PATH [--body FILE] [--projects 1,2] [--object KIND:ID=PROJECT]...
      Tells which rule decides, where it is written, what its query, request and response lists
      do, and where it finds the request's project; with --body, what is forwarded or which fields
      are refused. With --projects, the caller is bound to those projects; each --object says which
      project an object is in, as Label Studio would answer (task:87=2).
  diff OLD_DIR NEW_DIR
      Prints, role by role, the grants (+ added, - removed) and the field and query lists that
      change (~). Exits 1 when the new policies grant anything the old ones did not.
`
