package argparse

// Kind is what an option takes, named after the argparse action or type
// the seed used for it.
type Kind int

const (
	KindString  Kind = iota // one value; the last one given wins
	KindAppend              // action='append': one value each time, kept in order
	KindFlag                // action='store_true': no value
	KindFlagOff             // action='store_false': no value, sets its param false
	KindBool                // type=bool, nargs='?', const=True: a bare flag is true; a value is true unless it is empty ("False" is true)
	KindFloat               // type=float
	KindInt                 // type=int
	KindWords               // nargs='*': the words up to the next option, joined with spaces
	KindHelp                // -h/--help
)

// Option is one of a command's options.
type Option struct {
	Names []string // option strings in argparse's order: usage shows the first
	Param string   // the method's param it sets
	Kind  Kind
	Help  string
}

// Command is a subcommand: a method's name, at most one positional
// argument, and its options.
type Command struct {
	Name    string
	Arg     string // the one positional argument, also its param; "" for none
	ArgHelp string
	Options []Option // -h/--help comes first, as argparse adds it
}

// HelpOption is -h/--help, which argparse gives every parser.
var HelpOption = Option{Names: []string{"-h", "--help"}, Kind: KindHelp, Help: "show this help message and exit"}

// NewCommand is a command with -h/--help first, as argparse adds it.
func NewCommand(name, arg, argHelp string, options ...Option) Command {
	return Command{Name: name, Arg: arg, ArgHelp: argHelp, Options: append([]Option{HelpOption}, options...)}
}

// takesNoValue: a flag or -h, which stand alone.
func (k Kind) takesNoValue() bool { return k == KindFlag || k == KindFlagOff || k == KindHelp }
