// Package configs defines aigw's policy schema and loads it from YAML.
//
// A policy is one YAML file, or every *.yaml and *.yml file of a directory
// (not recursive, hidden files skipped) read in lexical order and merged:
// lists are concatenated, and the server block may be set by one file only.
//
// Loading is strict and exhaustive. [Load] reports every problem it finds in
// one pass, each as "file:line: message": YAML syntax errors, unknown or
// repeated fields, values of the wrong type, missing required fields,
// invalid values, duplicate ids and references to undeclared ids. Nothing is
// half-loaded: a policy with any problem is rejected as a whole, so a caller
// that reloads keeps its previous generation and shows the [Report].
//
// Values may refer to the environment with ${NAME} or ${NAME:-default}, and
// a [Secret] may be read from a file with "file:PATH"; see [Load] for the
// exact rules. The environment is an explicit [Env] argument: the package
// never reads process state on its own, and holds no package-level mutable
// state.
//
// [Watcher] polls the policy files' checksum so that a caller can reload
// when they change.
//
// configs depends on no other package of aigw, so that tools (aigw validate,
// CI checks) can use it without the runtime.
package configs
