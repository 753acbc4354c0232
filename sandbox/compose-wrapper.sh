#!/bin/sh
# CloudBox sandbox: fault-injecting wrapper around the real docker-compose.
# startSandbox() copies this file to <workDir>/bin/compose-wrapper with the
# REAL_COMPOSE line below filled in. Format of the faults file and matching
# rules: sandbox/README.md ("Compose faults").
REAL_COMPOSE=${SANDBOX_REAL_COMPOSE:-docker-compose}

here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
faults="$here/compose-faults"
calls="$here/compose-calls.log"
tab=$(printf '\t')

# The string faults are matched against: the arguments joined by single
# spaces, without the leading global options (-f FILE, -p NAME, --env-file
# FILE, --project-directory DIR, ... and flags such as --no-ansi).
m=''
skip=0
global=1
for a in "$@"; do
  if [ "$skip" = 1 ]; then
    skip=0
    continue
  fi
  if [ "$global" = 1 ]; then
    case $a in
      -f | --file | -p | --project-name | --env-file | --project-directory | -H | --host | -c | --context | --log-level | --ansi | --profile | --tlscacert | --tlscert | --tlskey)
        skip=1
        continue
        ;;
      -*) continue ;;
    esac
    global=0
  fi
  m="${m:+$m }$a"
done

action=''
seconds=''
command=''
n=0
if [ -s "$faults" ]; then
  while IFS= read -r line || [ -n "$line" ]; do
    n=$((n + 1))
    case $line in '' | '#'*) continue ;; esac
    # ACTION <TAB> TIMES <TAB> SECONDS <TAB> MATCH <TAB> COMMAND
    f_action=${line%%"$tab"*}
    rest=${line#*"$tab"}
    f_times=${rest%%"$tab"*}
    rest=${rest#*"$tab"}
    f_seconds=${rest%%"$tab"*}
    rest=${rest#*"$tab"}
    f_match=${rest%%"$tab"*}
    case $rest in *"$tab"*) f_command=${rest#*"$tab"} ;; *) f_command='' ;; esac
    printf '%s\n' "$m" | grep -Eq -- "$f_match" || continue
    if [ -n "$f_times" ]; then
      hits="$faults.hits.$n"
      used=0
      [ -f "$hits" ] && used=$(wc -l <"$hits")
      [ "$used" -ge "$f_times" ] && continue
      echo x >>"$hits"
    fi
    action=$f_action
    seconds=$f_seconds
    command=$f_command
    break
  done <"$faults"
fi

printf '%s\t%s\t%s\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$$" "${action:-pass}" "$m" >>"$calls" 2>/dev/null

case $action in
  '')
    exec "$REAL_COMPOSE" "$@"
    ;;
  fail)
    # A command stands for compose's own error output (run with sh -c, to stderr).
    if [ -n "$command" ]; then sh -c "$command" >&2; else echo "compose-wrapper: injected failure for: $m" >&2; fi
    exit 1
    ;;
  hang)
    echo "compose-wrapper: injected hang for: $m" >&2
    exec sleep 2147483647
    ;;
  slow)
    echo "compose-wrapper: injected delay of ${seconds:-10}s for: $m" >&2
    sleep "${seconds:-10}"
    exec "$REAL_COMPOSE" "$@"
    ;;
  run-then-fail)
    "$REAL_COMPOSE" "$@"
    echo "compose-wrapper: injected failure after running: $m" >&2
    exit 1
    ;;
  run-then-exec)
    "$REAL_COMPOSE" "$@"
    rc=$?
    sh -c "$command"
    exit $rc
    ;;
  *)
    echo "compose-wrapper: unknown fault action '$action' in $faults" >&2
    exit 2
    ;;
esac
