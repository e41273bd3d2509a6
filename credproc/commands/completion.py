"""credproc completion: a bash (zsh through bashcompinit) or fish completion script.

Role names come from the config the command line being completed names with --config (else
$CREDPROC_CONFIG, else the default one), by running `credproc completion --roles [--config PATH]`.
"""

import argparse

from .. import app

HELP = "print a shell completion script (bash, zsh, fish)"
DESCRIPTION = ("Print a completion script for commands, options, formats and the role names of your config (the "
               "one named by --config on the line being completed, else the usual one). Load it from your shell's "
               "startup file.")
EXAMPLES = """\
  credproc completion bash > ~/.local/share/bash-completion/completions/credproc
  echo 'source <(credproc completion bash)' >> ~/.bashrc
  echo 'autoload -U bashcompinit && bashcompinit && source <(credproc completion zsh)' >> ~/.zshrc
  credproc completion fish > ~/.config/fish/completions/credproc.fish"""

FORMATS = "process env env-no-export powershell windows-cmd fish credentials"
# Options whose next word is a value (not a role, not a command).
VALUE_OPTIONS = "--role --config --format --profile-name --port --destination --options"

BASH = r"""# credproc completion (bash; zsh through bashcompinit)
_credproc_complete() {
    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}" cmd="" w i cfg=() positional=""
    for ((i = 1; i < COMP_CWORD; i++)); do
        w="${COMP_WORDS[i]}"
        if [ "$w" = --config ]; then  # --config PATH, or --config=PATH (bash splits at '=')
            local cpath="${COMP_WORDS[i+1]}"
            [ "$cpath" = "=" ] && cpath="${COMP_WORDS[i+2]}"
            [ -n "$cpath" ] && cfg=(--config "${cpath/#\~/$HOME}")
        fi
    done
    for ((i = 1; i < COMP_CWORD; i++)); do
        w="${COMP_WORDS[i]}"
        if [ -z "$cmd" ]; then
            case " @COMMANDS@ " in *" $w "*) cmd="$w";; esac
        elif [[ "$w" != -* && "$w" != "=" ]]; then
            case " @VALUE_OPTIONS@ " in *" ${COMP_WORDS[i-1]} "*) ;; *) positional="$w";; esac
        fi
    done
    [ "$prev" = "=" ] && prev="${COMP_WORDS[COMP_CWORD-2]}"
    case "$prev" in
        --role) COMPREPLY=($(compgen -W "$(credproc completion --roles "${cfg[@]}" 2>/dev/null)" -- "$cur")); return;;
        --format) COMPREPLY=($(compgen -W "@FORMATS@" -- "$cur")); return;;
        --config) COMPREPLY=($(compgen -f -- "$cur")); return;;
    esac
    if [ "$cmd" = exec ] && printf '%s\n' "${COMP_WORDS[@]:1:COMP_CWORD-1}" | grep -qx -- '--'; then
        COMPREPLY=($(compgen -c -- "$cur")); return
    fi
    case "$cmd" in
        "") COMPREPLY=($(compgen -W "@COMMANDS@ --role --config --debug --version --help" -- "$cur"));;
        *)  local words
            words="$(credproc completion --options "$cmd" 2>/dev/null)"
            # the role as the command's first argument (credproc login ROLE)
            if [[ "$cur" != -* && -z "$positional" && " @ROLE_COMMANDS@ " == *" $cmd "* ]]; then
                words="$words $(credproc completion --roles "${cfg[@]}" 2>/dev/null)"
            fi
            COMPREPLY=($(compgen -W "$words" -- "$cur"));;
    esac
}
complete -o default -F _credproc_complete credproc
"""

FISH_HEAD = r"""# credproc completion (fish)
function __credproc_config --description 'the --config of the command line being completed'
    set -l tokens (commandline -opc)
    for i in (seq 2 (count $tokens))
        set -l path
        if test "$tokens[$i]" = --config; and test $i -lt (count $tokens)
            set path $tokens[(math $i + 1)]
        else if string match -q -- '--config=*' $tokens[$i]
            set path (string replace -- '--config=' '' $tokens[$i])
        end
        if test -n "$path"
            echo --config
            string replace -r -- '^~(?=/|$)' $HOME $path
        end
    end
end
function __credproc_roles
    credproc completion --roles (__credproc_config) 2>/dev/null
end
function __credproc_wants_role --description 'a role command without its ROLE argument yet'
    set -l tokens (commandline -opc)
    set -l cmd
    set -l words 0
    for i in (seq 2 (count $tokens))
        set -l t $tokens[$i]
        if test -z "$cmd"
            contains -- $t @COMMANDS@; and set cmd $t
        else if not string match -q -- '-*' $t; and not contains -- $tokens[(math $i - 1)] @VALUE_OPTIONS@
            set words (math $words + 1)
        end
    end
    contains -- "$cmd" @ROLE_COMMANDS@; and test $words -eq 0
end
complete -c credproc -f
complete -c credproc -n __credproc_wants_role -a '(__credproc_roles)' -d role
complete -c credproc -l role -x -a '(__credproc_roles)' -d 'the role'
complete -c credproc -l config -r -F -d 'configuration file'
complete -c credproc -l debug -d 'diagnostics on stderr'
complete -c credproc -n __fish_use_subcommand -l version -d 'print the version'
complete -c credproc -n '__fish_seen_subcommand_from completion' -a 'bash zsh fish'
complete -c credproc -n '__fish_seen_subcommand_from exec' -a '(__fish_complete_subcommand -- --)'
"""


def add_arguments(parser):
    parser.add_argument("shell", nargs="?", choices=["bash", "zsh", "fish"], default="bash",
                        help="the shell (default bash)")
    parser.add_argument("--roles", action="store_true", help=argparse.SUPPRESS)  # used by the scripts
    parser.add_argument("--options", metavar="COMMAND", help=argparse.SUPPRESS)  # used by the scripts


def _subparsers():
    from ..cli import build_parser

    return build_parser()._subparsers._group_actions[0].choices


def _options(sub):
    return [a for a in sub._actions if a.option_strings and a.help != argparse.SUPPRESS]


def _role_commands(subs):
    return [name for name, sub in subs.items() if any("--role" in a.option_strings for a in sub._actions)]


def fish_script(names, subs):
    lines = [FISH_HEAD.replace("@COMMANDS@", " ".join(names)).replace("@VALUE_OPTIONS@", VALUE_OPTIONS)
             .replace("@ROLE_COMMANDS@", " ".join(_role_commands(subs)))]
    from .. import commands

    for name in names:
        sub = subs[name]
        lines.append(f"complete -c credproc -n __fish_use_subcommand -a {name} -d {_fish_quote(commands.load(name).HELP)}")
        for action in _options(sub):
            longs = [o[2:] for o in action.option_strings if o.startswith("--")]
            for long in longs:
                if long in ("role", "config", "debug", "help"):
                    continue
                value = "" if action.nargs == 0 else " -x"
                if long == "format":
                    value = f" -x -a {_fish_quote(FORMATS)}"
                lines.append(f"complete -c credproc -n '__fish_seen_subcommand_from {name}' -l {long}{value}"
                             f" -d {_fish_quote((action.help or '').split(' (')[0])}")
    return "\n".join(lines) + "\n"


def _fish_quote(text):
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def run(args):
    from .. import commands

    if args.roles:  # quietly nothing when the config cannot be read: it is a completion
        try:
            print("\n".join(sorted(app.load_config(args).roles)))
        except Exception:  # noqa: BLE001
            pass
        return 0
    subs = _subparsers()
    if args.options:
        sub = subs.get(args.options)
        if sub is not None:
            words = [o for a in _options(sub) for o in a.option_strings]
            for a in sub._actions:  # a command with actions (keys add|import|...): their names and options
                for name, action in (getattr(a, "choices", None) or {}).items():
                    if isinstance(action, argparse.ArgumentParser):
                        words += [name] + [o for b in _options(action) for o in b.option_strings]
            print(" ".join(dict.fromkeys(words)))
        return 0
    if args.shell == "fish":
        print(fish_script(commands.NAMES, subs), end="")
        return 0
    print(BASH.replace("@COMMANDS@", " ".join(commands.NAMES)).replace("@FORMATS@", FORMATS)
          .replace("@VALUE_OPTIONS@", VALUE_OPTIONS).replace("@ROLE_COMMANDS@", " ".join(_role_commands(subs))), end="")
    return 0
