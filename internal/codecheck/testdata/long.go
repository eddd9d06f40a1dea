package long

func five() {
	a := 1
	_ = a
	_ = a
}

func six() {
	a := 1
	_ = a
	_ = a
	_ = a
}

type T struct{}

func (*T) method() {
	a := 1
	_ = a
	_ = a
	_ = a
	_ = a
}

func short() {
	f := func() {
		_ = 1
		_ = 2
		_ = 3
		_ = 4
	}
	f()
}
