package codecheck

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// maxFuncLines bounds a function, its signature and closing brace
// included (issue 23): a longer one is split into named steps.
const maxFuncLines = 120

// waived are functions allowed past the bound for now, each at most the
// length it had when waived, so it can only shrink. None today.
var waived = map[string]int{}

// TestFunctionLength finds every function and function literal over
// maxFuncLines in the repository's Go files, tests included.
func TestFunctionLength(t *testing.T) {
	long, err := longFunctions("../..", maxFuncLines)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range long {
		if limit, ok := waived[f.name]; ok && f.lines <= limit {
			continue
		}
		t.Errorf("%s:%d: %s is %d lines, more than %d: split it into steps", f.file, f.line, f.name, f.lines, maxFuncLines)
	}
}

func TestFunctionLengthFindsLongOnes(t *testing.T) {
	long, err := longFunctions("testdata", 5)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range long {
		got = append(got, fmt.Sprintf("%s %d", f.name, f.lines))
	}
	want := "long.go: six 6, long.go: (*T).method 7, long.go: short 9, long.go: func literal in short 6"
	if strings.Join(got, ", ") != want {
		t.Errorf("found %q, want %q", strings.Join(got, ", "), want)
	}
}

type longFunc struct {
	file, name  string
	line, lines int
}

// longFunctions parses every .go file under root (but .git and testdata
// folders below it) and lists the functions longer than max lines.
func longFunctions(root string, max int) ([]longFunc, error) {
	var out []longFunc
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		out = append(out, longIn(fset, f, filepath.ToSlash(rel), max)...)
		return nil
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].file < out[j].file })
	return out, err
}

func longIn(fset *token.FileSet, f *ast.File, file string, max int) []longFunc {
	var out []longFunc
	enclosing := ""
	ast.Inspect(f, func(n ast.Node) bool {
		var body *ast.BlockStmt
		var name string
		switch fn := n.(type) {
		case *ast.FuncDecl:
			body, name = fn.Body, funcName(fn)
			enclosing = name
		case *ast.FuncLit:
			body, name = fn.Body, "func literal in "+enclosing
		default:
			return true
		}
		if body == nil {
			return true
		}
		start, end := fset.Position(n.Pos()).Line, fset.Position(body.Rbrace).Line
		if lines := end - start + 1; lines > max {
			out = append(out, longFunc{file: file, name: file + ": " + name, line: start, lines: lines})
		}
		return true
	})
	return out
}

// funcName is "name", or "(*T).name" for a method.
func funcName(fn *ast.FuncDecl) string {
	if fn.Recv == nil || len(fn.Recv.List) == 0 {
		return fn.Name.Name
	}
	recv := fn.Recv.List[0].Type
	if idx, ok := recv.(*ast.IndexExpr); ok { // a generic type's method
		recv = idx.X
	}
	switch r := recv.(type) {
	case *ast.StarExpr:
		if id, ok := r.X.(*ast.Ident); ok {
			return "(*" + id.Name + ")." + fn.Name.Name
		}
	case *ast.Ident:
		return "(" + r.Name + ")." + fn.Name.Name
	}
	return fn.Name.Name
}
