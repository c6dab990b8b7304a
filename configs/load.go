package configs

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Load reads the policy at path (a file, or a directory whose *.yaml and
// *.yml files are merged in lexical order; hidden files and
// sub-directories are skipped), checks it and returns it with defaults
// applied and secrets resolved.
//
// Results:
//   - success: p is non-nil, rep holds the warnings (possibly none), err is nil;
//   - problems: p is nil, rep lists every problem and warning, and err is rep;
//   - I/O failure (path missing, unreadable file): p and rep are nil and err
//     says why.
//
// Report positions name files as path joined with the file name, so a
// relative path gives relative names.
//
// Environment references: every scalar value (not mapping keys) may contain
// ${NAME} or ${NAME:-default}, and "$$" writes a literal "$" ("$${X}" is
// the text "${X}"; a lone "$" is literal too). They are
// expanded before the value is decoded, whatever the field's type, so
// "max_conns: ${CONNS:-64}" works. ${NAME} with NAME unset expands to "" and
// is a warning; a required field left empty by it is a problem that names
// the variable. env may be nil (empty environment).
//
// Secrets: an api_key of the form "file:PATH" is replaced by the content of
// PATH (relative to the policy file's directory), trailing newlines
// trimmed. PATH must be a regular file of at most 1 MiB. Secret files are
// not part of Checksum: reload explicitly after rotating one.
//
// YAML: one document per file; anchors and aliases are allowed, merge keys
// ("<<") are not.
func Load(path string, env Env) (*Policy, *Report, error) {
	files, err := readPolicyFiles(path)
	if err != nil {
		return nil, nil, err
	}
	l := &loader{env: env, rep: &Report{}}
	var p Policy
	if len(files) == 0 {
		l.rep.problem(Pos{File: path}, "no policy files (*.yaml, *.yml) in directory")
	}
	for _, f := range files {
		l.loadFile(f, &p)
		p.Sources = append(p.Sources, f.name)
	}
	p.Checksum = checksum(files)
	if len(files) > 0 {
		l.validate(&p, path)
	}
	l.rep.finish()
	if len(l.rep.Problems) > 0 {
		return nil, l.rep, l.rep
	}
	return &p, l.rep, nil
}

// srcFile is one policy file being loaded.
type srcFile struct {
	name string // as reported: the path given to Load, joined with the file name
	data []byte
	// fields maps a field path ("providers[0].base_url") to where its value
	// was written, for the checks that run after decoding.
	fields map[string]fieldInfo
}

type fieldInfo struct {
	line  int
	null  bool     // written, but null ("key:" with no value)
	bad   bool     // its value had a problem already reported
	empty []varUse // references that expanded to ""
}

// listPolicyFiles returns the files making up the policy at path, named as
// path joined with the file name, in lexical order.
func listPolicyFiles(path string) ([]string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	if !fi.IsDir() {
		return []string{path}, nil
	}
	entries, err := os.ReadDir(path) // sorted by name
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	var names []string
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, ".") || !(strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml")) {
			continue
		}
		full := filepath.Join(path, n)
		st, err := os.Stat(full) // follows symlinks (Kubernetes ConfigMap mounts)
		if err != nil {
			return nil, fmt.Errorf("policy: %w", err)
		}
		if st.Mode().IsRegular() {
			names = append(names, full)
		}
	}
	return names, nil
}

func readPolicyFiles(path string) ([]*srcFile, error) {
	names, err := listPolicyFiles(path)
	if err != nil {
		return nil, err
	}
	files := make([]*srcFile, 0, len(names))
	for _, n := range names {
		data, err := os.ReadFile(n)
		if err != nil {
			return nil, fmt.Errorf("policy: %w", err)
		}
		files = append(files, &srcFile{name: n, data: data, fields: map[string]fieldInfo{}})
	}
	return files, nil
}

// checksum hashes the files' base names and contents, unambiguously framed.
func checksum(files []*srcFile) string {
	h := sha256.New()
	var n [8]byte
	for _, f := range files {
		for _, part := range [][]byte{[]byte(filepath.Base(f.name)), f.data} {
			binary.BigEndian.PutUint64(n[:], uint64(len(part)))
			h.Write(n[:])
			h.Write(part)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// checksumPath reads the policy at path and returns its checksum.
func checksumPath(path string) (string, error) {
	files, err := readPolicyFiles(path)
	if err != nil {
		return "", err
	}
	return checksum(files), nil
}

// loader carries the state of one Load call.
type loader struct {
	env Env
	rep *Report

	// Where each merged item came from, parallel to the Policy's lists.
	provMeta, modelMeta, orgMeta, keyMeta, tierMeta, priceMeta []itemMeta
	server                                                     *itemMeta // the file that set server, if any

	// broken is set when a file could not be read as a policy at all, or
	// one of its lists was not a list: "no X declared" would then be noise.
	broken bool
}

// itemMeta locates a merged item: its file and its path in that file.
type itemMeta struct {
	file *srcFile
	path string // "providers[0]"
	pos  Pos
}

// loadFile parses, expands and decodes one file and appends its content
// to p.
func (l *loader) loadFile(f *srcFile, p *Policy) {
	root, ok := l.parse(f)
	if !ok || root == nil {
		return
	}
	d := &decoder{l: l, f: f, empty: map[*yaml.Node][]varUse{}, envErr: map[*yaml.Node]error{}, active: map[*yaml.Node]bool{}}
	d.budget = 16*d.expandTree(root) + 1024
	var fp Policy
	d.value(root, reflectValue(&fp), "")
	if f.fields[""].bad {
		l.broken = true
	}
	for _, kind := range []string{"providers", "models", "orgs", "keys", "tiers", "prices"} {
		if f.fields[kind].bad {
			l.broken = true
		}
	}

	if fi, ok := f.fields["server"]; ok && !fi.null {
		pos := Pos{File: f.name, Line: fi.line}
		if l.server != nil {
			l.rep.problem(pos, fmt.Sprintf("server is already set at %s (only one file may set it)", l.server.pos))
		} else {
			l.server = &itemMeta{file: f, path: "server", pos: pos}
			p.Server = fp.Server
		}
	}
	for i := range fp.Providers {
		l.provMeta = append(l.provMeta, itemMeta{f, "providers[" + strconv.Itoa(i) + "]", fp.Providers[i].Pos})
	}
	for i := range fp.Models {
		l.modelMeta = append(l.modelMeta, itemMeta{f, "models[" + strconv.Itoa(i) + "]", fp.Models[i].Pos})
	}
	for i := range fp.Orgs {
		l.orgMeta = append(l.orgMeta, itemMeta{f, "orgs[" + strconv.Itoa(i) + "]", fp.Orgs[i].Pos})
	}
	for i := range fp.Keys {
		l.keyMeta = append(l.keyMeta, itemMeta{f, "keys[" + strconv.Itoa(i) + "]", fp.Keys[i].Pos})
	}
	p.Providers = append(p.Providers, fp.Providers...)
	p.Models = append(p.Models, fp.Models...)
	p.Orgs = append(p.Orgs, fp.Orgs...)
	for i := range fp.Tiers {
		l.tierMeta = append(l.tierMeta, itemMeta{f, "tiers[" + strconv.Itoa(i) + "]", fp.Tiers[i].Pos})
	}
	for i := range fp.Prices {
		l.priceMeta = append(l.priceMeta, itemMeta{f, "prices[" + strconv.Itoa(i) + "]", fp.Prices[i].Pos})
	}
	p.Keys = append(p.Keys, fp.Keys...)
	p.Tiers = append(p.Tiers, fp.Tiers...)
	p.Prices = append(p.Prices, fp.Prices...)
}

// parse returns the root node of f's single document, nil for an empty
// file. ok is false when a problem was reported.
func (l *loader) parse(f *srcFile) (root *yaml.Node, ok bool) {
	docs, err := parseDocs(f.data, 2)
	if err != nil {
		line, msg := syntaxErrorLine(f.data, err)
		l.rep.problem(Pos{File: f.name, Line: line}, "YAML syntax error: "+msg)
		l.broken = true
		return nil, false
	}
	if len(docs) == 0 {
		return nil, true
	}
	if len(docs) > 1 {
		l.rep.problem(Pos{File: f.name, Line: docs[1].Line}, "a policy file holds one YAML document; split the others into their own files")
		l.broken = true
		return nil, false
	}
	doc := docs[0]
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return nil, true
		}
		doc = doc.Content[0]
	}
	if isNull(doc) {
		return nil, true
	}
	return doc, true
}

// parseDocs parses at most max documents of data.
func parseDocs(data []byte, max int) ([]*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []*yaml.Node
	for len(docs) < max {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return docs, err
		}
		docs = append(docs, &n)
	}
	return docs, nil
}

// syntaxErrorLine turns a yaml.v3 parse error into a 1-based line and a
// message. yaml.v3's own line numbers are unreliable (parser errors give
// the 0-based line where the enclosing block started, some errors none), so
// the line is found as the shortest prefix of whole lines that fails with
// the same message (a bisection; parsing a prefix fails from the offending
// line on).
func syntaxErrorLine(data []byte, err error) (int, string) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if i := strings.Index(rest, ": "); i > 0 {
			if _, aerr := strconv.Atoi(rest[:i]); aerr == nil {
				msg = rest[i+2:]
			}
		}
	}
	var ends []int // ends[k] = length of the prefix holding lines 1..k+1
	for i, c := range data {
		if c == '\n' {
			ends = append(ends, i+1)
		}
	}
	if len(ends) == 0 || ends[len(ends)-1] != len(data) {
		ends = append(ends, len(data))
	}
	same := func(k int) bool { // does the prefix of lines 1..k fail with msg?
		_, err := parseDocs(data[:ends[k-1]], 2)
		if err == nil {
			return false
		}
		m := strings.TrimPrefix(err.Error(), "yaml: ")
		return m == msg || strings.HasSuffix(m, ": "+msg)
	}
	lo, hi := 1, len(ends) // invariant: same(hi) (the whole input fails)
	for lo < hi {
		mid := lo + (hi-lo)/2
		if same(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return hi, msg
}
