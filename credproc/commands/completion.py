"""credproc completion: a bash (and zsh, through bashcompinit) completion script."""

import argparse

from .. import app

HELP = "print a shell completion script (bash, zsh)"
DESCRIPTION = ("Print a completion script for commands, options, formats and the role names of your config. "
               "Load it from your shell's startup file.")
EXAMPLES = """\
  credproc completion bash > ~/.local/share/bash-completion/completions/credproc
  echo 'source <(credproc completion bash)' >> ~/.bashrc
  echo 'autoload -U bashcompinit && bashcompinit && source <(credproc completion zsh)' >> ~/.zshrc"""

FORMATS = "process env env-no-export powershell windows-cmd fish credentials"

SCRIPT = r"""# credproc completion (bash; zsh through bashcompinit)
_credproc_complete() {
    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}" cmd="" w
    for w in "${COMP_WORDS[@]:1:COMP_CWORD-1}"; do
        case " @COMMANDS@ " in *" $w "*) cmd="$w"; break;; esac
    done
    case "$prev" in
        --role) COMPREPLY=($(compgen -W "$(credproc completion --roles 2>/dev/null)" -- "$cur")); return;;
        --format) COMPREPLY=($(compgen -W "@FORMATS@" -- "$cur")); return;;
        --config) COMPREPLY=($(compgen -f -- "$cur")); return;;
    esac
    if [ "$cmd" = exec ] && printf '%s\n' "${COMP_WORDS[@]:1:COMP_CWORD-1}" | grep -qx -- '--'; then
        COMPREPLY=($(compgen -c -- "$cur")); return
    fi
    case "$cmd" in
        "") COMPREPLY=($(compgen -W "@COMMANDS@ --role --config --debug --version --help" -- "$cur"));;
        *) COMPREPLY=($(compgen -W "$(credproc completion --options "$cmd" 2>/dev/null)" -- "$cur"));;
    esac
}
complete -o default -F _credproc_complete credproc
"""


def add_arguments(parser):
    parser.add_argument("shell", nargs="?", choices=["bash", "zsh"], default="bash", help="the shell (default bash)")
    parser.add_argument("--roles", action="store_true", help=argparse.SUPPRESS)  # used by the script
    parser.add_argument("--options", metavar="COMMAND", help=argparse.SUPPRESS)  # used by the script


def run(args):
    from .. import commands

    if args.roles:  # quietly nothing when the config cannot be read: it is a completion
        try:
            print("\n".join(sorted(app.load_config(args).roles)))
        except Exception:  # noqa: BLE001
            pass
        return 0
    if args.options:
        from ..cli import build_parser

        sub = build_parser()._subparsers._group_actions[0].choices.get(args.options)
        if sub is not None:
            words = []
            for a in sub._actions:
                words += [o for o in a.option_strings if a.help != argparse.SUPPRESS]
                for name, action in (getattr(a, "choices", None) or {}).items():  # e.g. keys add|import|...
                    if isinstance(action, argparse.ArgumentParser):
                        words += [name] + [o for b in action._actions for o in b.option_strings if b.help != argparse.SUPPRESS]
            print(" ".join(dict.fromkeys(words)))
        return 0
    print(SCRIPT.replace("@COMMANDS@", " ".join(commands.NAMES)).replace("@FORMATS@", FORMATS), end="")
    return 0
