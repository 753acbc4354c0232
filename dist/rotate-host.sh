#!/bin/sh
# Host side of the JWT secret rotation (rotate-jwt-secrets action).
#
#   rotate-host.sh preflight   checks the deploy dir and takes the lock
#   rotate-host.sh release     releases the lock this run took (before launch)
#   rotate-host.sh launch      starts "run" detached from the SSH session
#   rotate-host.sh follow      prints the journal as it grows, until the run ends
#   rotate-host.sh resolve     the resolved compose configuration, with marker values (restart: targeted)
#   rotate-host.sh run         the sequence itself: backup, down, swap, ... with rollback
#
# Parameters come as shell assignments, either prepended to this script on
# stdin (preflight, release, launch, follow) or in the 0600 file
# .rotation/params (run). No secret value is ever a parameter: the new .env
# is staged by the action over SFTP as .rotation/env.new (0600) and only
# renamed here. Nothing this script prints or journals contains a value
# from .env.
#
# Journal: .rotation/journal, one event per line, tab separated:
#   <epoch_ms> <event> <step> <status> <detail>

set -u
set -f # COMPOSE_CMD is split on spaces; no globbing anywhere
umask 077

ROT=.rotation
JOURNAL=$ROT/journal

now_ms() {
  ms=$(date +%s%3N 2>/dev/null)
  case $ms in
    '' | *[!0-9]*) ms=$(($(date +%s) * 1000)) ;;
  esac
  printf '%s' "$ms"
}

journal() { # event step status detail
  printf '%s\t%s\t%s\t%s\t%s\n' "$(now_ms)" "$1" "${2:--}" "${3:--}" "${4:-}" >>"$JOURNAL"
}

say() { printf '%s=%s\n' "$1" "$2"; }

# The .env as compose is given it (ENV_ABS, through any symlink) and the real
# file behind it (ENV_REAL, in ENV_DIR): a symlinked .env (e.g. a
# Capistrano-style shared/.env) is staged, backed up and renamed beside its
# target, so the link stays and the file the next deploy reads is rotated.
env_paths() {
  case $ENV_FILE in
    /*) ENV_ABS=$ENV_FILE ;;
    *) ENV_ABS=$DEPLOY_DIR/$ENV_FILE ;;
  esac
  ENV_REAL=$(readlink -f -- "$ENV_ABS" 2>/dev/null) || ENV_REAL=''
  ENV_DIR=${ENV_REAL%/*}
  ENV_BASE=${ENV_REAL##*/}
}

# Every compose call is bounded by the step timeout, and names the env file:
# without --env-file, compose >= 1.28 reads the .env beside the first -f file,
# which is another file when the compose file sits in a subfolder.
# COMPOSE_CMD is split on spaces on purpose (set -f above).
# shellcheck disable=SC2086
compose() {
  if command -v timeout >/dev/null 2>&1; then
    timeout -k 10 "$STEP_TIMEOUT" $COMPOSE_CMD -f "$COMPOSE_FILE" --env-file "$ENV_ABS" "$@"
  else
    $COMPOSE_CMD -f "$COMPOSE_FILE" --env-file "$ENV_ABS" "$@"
  fi
}

# Gives a file the .env target's mode and owner; fails rather than leave the
# secrets readable by someone else or unreadable by the app's group.
keep_owner() { # file
  if [ "$(id -u)" = 0 ]; then
    chown "$ENV_OWNER" "$1" || return 1
  else
    gid=${ENV_OWNER#*:}
    [ "$(stat -c %g "$1")" = "$gid" ] || chgrp "$gid" "$1" || return 1
  fi
  chmod "$ENV_MODE" "$1"
}

# Puts a copy of a file in place of the .env target by an atomic rename in the
# target's own directory, with the target's mode and owner, synced first.
install_env() { # source
  tmp=$ENV_DIR/.$ENV_BASE.rotation-new.$$
  if cp "$1" "$tmp" && keep_owner "$tmp" && { sync "$tmp" 2>/dev/null || sync; } &&
    mv -f "$tmp" "$ENV_REAL"; then
    sync "$ENV_DIR" 2>/dev/null || sync
    return 0
  fi
  rm -f "$tmp"
  return 1
}

# The run's pid, and the boot it started in: after a reboot the pid may
# belong to another process.
holder_alive() { # pid
  [ -n "$1" ] || return 1
  if [ -r /proc/sys/kernel/random/boot_id ] && [ -f "$ROT/lock/boot" ] &&
    [ "$(cat /proc/sys/kernel/random/boot_id)" != "$(cat "$ROT/lock/boot" 2>/dev/null)" ]; then
    return 1
  fi
  kill -0 "$1" 2>/dev/null || return 1
  # A reused pid is another program: the holder runs this script's "run".
  if [ -r "/proc/$1/cmdline" ]; then
    tr '\0' ' ' <"/proc/$1/cmdline" | grep -q 'rotate-host.sh run' || return 1
  fi
  return 0
}

# A lock without a pid belongs to an action between preflight and launch (CI
# writes, staging): live while younger than this bound, stale after.
LOCK_PENDING_MAX=900

# alive or dead: whether the lock's holder lives (no lock: dead).
lock_state() {
  [ -d "$ROT/lock" ] || {
    echo dead
    return
  }
  pid=$(cat "$ROT/lock/pid" 2>/dev/null || true)
  if [ -n "$pid" ]; then
    if holder_alive "$pid"; then echo alive; else echo dead; fi
    return
  fi
  age=$(file_age_seconds "$ROT/lock")
  case $age in
    '' | unknown | *[!0-9-]*) echo dead ;;
    *) if [ "$age" -lt "$LOCK_PENDING_MAX" ]; then echo alive; else echo dead; fi ;;
  esac
}

list_backups() { # newest first
  set +f
  for f in "$ENV_REAL".backup.*; do
    case ${f##*.backup.} in
      [0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]T[0-9][0-9][0-9][0-9][0-9][0-9]Z) [ -f "$f" ] && printf '%s\n' "$f" ;;
    esac
  done | sort -r
  set -f
}

# The backup the interrupted run made (or an interrupted recovery restored),
# from its journal, which launch moved to journal.prev; empty when it made none.
interrupted_backup() {
  [ -f "$ROT/journal.prev" ] || return 0
  t=$(printf '\t')
  sed -n -e "s/^[0-9]*${t}step-end${t}backup${t}ok${t}path=//p" \
    -e "s/^[0-9]*${t}step-end${t}recover-restore${t}ok${t}path=//p" \
    -e "s/^[0-9]*${t}info${t}recover-restore${t}-${t}path=//p" "$ROT/journal.prev" | tail -n 1
}

journal_terminal() {
  [ -f "$JOURNAL" ] && grep -q "$(printf '\tresult\t')" "$JOURNAL"
}

file_age_seconds() {
  m=$(stat -c %Y "$1" 2>/dev/null || echo '')
  [ -n "$m" ] && echo $(($(date +%s) - m)) || echo unknown
}

# ---------------------------------------------------------------- preflight
preflight() {
  problems=0
  if [ ! -d "$DEPLOY_DIR" ]; then
    say deploy missing
    exit 0
  fi
  say deploy ok
  cd "$DEPLOY_DIR" || {
    say deploy unreadable
    exit 0
  }
  if [ -f "$COMPOSE_FILE" ] && [ -r "$COMPOSE_FILE" ]; then say compose_file ok; else
    say compose_file missing
    problems=1
  fi
  if [ ! -e "$ENV_FILE" ]; then
    say env_file missing
    problems=1
  elif [ ! -r "$ENV_FILE" ] || [ ! -w "$ENV_FILE" ]; then
    say env_file not-read-writable
    problems=1
  elif [ -z "$ENV_REAL" ] || [ ! -f "$ENV_REAL" ]; then
    say env_file unresolvable
    problems=1
  else
    say env_file ok
    [ -L "$ENV_ABS" ] && say env_link "$ENV_REAL"
    say env_real "$ENV_REAL"
    # -L: the target's mode and owner, not the link's 777.
    st=$(stat -L -c '%a %u:%g' -- "$ENV_ABS" 2>/dev/null)
    case $st in
      [0-7]*' '[0-9]*:[0-9]*) say env_stat "$st" ;;
      *)
        say env_stat unreadable
        problems=1
        ;;
    esac
    if [ "$(id -u)" != 0 ] && [ -n "$st" ]; then
      uid=${st#* }
      uid=${uid%%:*}
      gid=${st##*:}
      if [ "$uid" != "$(id -u)" ]; then
        say env_owner_keep no-owner
        problems=1
      elif [ "$gid" != "$(id -g)" ] && ! id -G | tr ' ' '\n' | grep -qx "$gid"; then
        say env_owner_keep no-group
        problems=1
      else
        say env_owner_keep yes
      fi
    fi
    if [ -w "$ENV_DIR" ]; then say env_dir_writable yes; else
      say env_dir_writable no
      problems=1
    fi
  fi
  if [ -w . ]; then say deploy_writable yes; else
    say deploy_writable no
    problems=1
  fi

  resolved=''
  if [ "${TARGET:-compose}" = swarm ]; then
    swarm_preflight || problems=1
  elif [ "$COMPOSE_CMD" = auto ]; then
    for candidate in 'docker compose' 'docker-compose'; do
      if $candidate version >/dev/null 2>&1; then
        resolved=$candidate
        break
      fi
    done
  elif $COMPOSE_CMD version >/dev/null 2>&1; then
    resolved=$COMPOSE_CMD
  fi
  if [ "${TARGET:-compose}" = swarm ]; then
    :
  elif [ -n "$resolved" ]; then
    say compose_cmd "$resolved"
    say compose_version "$($resolved version 2>/dev/null | head -n 1)"
    COMPOSE_CMD=$resolved
    if [ "$problems" = 0 ]; then
      if services=$(compose config --services 2>"$TMPDIR_PF/config.err"); then
        say services "$(printf '%s' "$services" | tr '\n' ' ')"
      else
        say compose_config_error "$(head -c 300 "$TMPDIR_PF/config.err" | tr '\n\t' '  ')"
        problems=1
      fi
    fi
  else
    say compose_cmd none
    problems=1
  fi

  if command -v curl >/dev/null 2>&1; then say http_client curl
  elif command -v wget >/dev/null 2>&1; then say http_client wget
  else
    say http_client none
    problems=1
  fi
  # What can run the sequence past the end of this SSH session: the action
  # chooses (choose_detach in plan.ts) and refuses when nothing can.
  if command -v setsid >/dev/null 2>&1; then say detach setsid; fi
  if command -v systemd-run >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    if [ "$(id -u)" = 0 ]; then say detach systemd-run; else say detach systemd-run-user-capable; fi
    # logind kills a non-root user's processes at logout when KillUserProcesses=yes,
    # setsid or not, unless the user lingers (then `systemd-run --user` survives).
    kup=$(busctl get-property org.freedesktop.login1 /org/freedesktop/login1 \
      org.freedesktop.login1.Manager KillUserProcesses 2>/dev/null | cut -d ' ' -f 2)
    case $kup in
      true) say kill_user_processes yes ;;
      false) say kill_user_processes no ;;
      *) say kill_user_processes unknown ;;
    esac
    if [ -f "/var/lib/systemd/linger/$(id -un)" ]; then say linger yes; else say linger no; fi
  else
    say kill_user_processes no
  fi
  if ! command -v setsid >/dev/null 2>&1 && ! command -v systemd-run >/dev/null 2>&1; then
    say detach none
    problems=1
  fi
  # The project compose would restart must be the one that runs (a wrong
  # COMPOSE_PROJECT_NAME restarts nothing and leaves the old values running).
  if [ "$problems" = 0 ] && [ -n "$resolved" ]; then
    say compose_project "${COMPOSE_PROJECT_NAME:-}"
    say compose_running "$(compose ps --services --filter status=running 2>/dev/null | grep -c .)"
  fi

  if ! { mkdir -p "$ROT" && chmod 700 "$ROT"; }; then
    say rotation_dir unwritable
    exit 0
  fi
  if command -v timeout >/dev/null 2>&1; then say timeout yes; else
    say timeout none
    problems=1
  fi

  # Journal of an earlier run: finished, still running, or interrupted?
  pid=''
  [ -f "$ROT/lock/pid" ] && pid=$(cat "$ROT/lock/pid" 2>/dev/null)
  if [ ! -f "$JOURNAL" ]; then
    say journal none
  elif journal_terminal; then
    say journal terminal
  elif [ "$(lock_state)" = alive ]; then
    say journal running
  else
    say journal interrupted
    say journal_age "$(file_age_seconds "$JOURNAL")"
    say journal_last_step "$(tail -n 1 "$JOURNAL" | cut -f 2,3 | tr '\t' ' ')"
  fi

  if [ -d "$ROT/lock" ]; then
    say lock_holder "$(tr '\n\t' '  ' <"$ROT/lock/holder" 2>/dev/null)"
    say lock_age "$(file_age_seconds "$ROT/lock")"
    if [ "$(lock_state)" = alive ]; then say lock_holder_alive yes; else say lock_holder_alive no; fi
    [ -n "$pid" ] || say lock_holder_pid none
  fi

  if [ "$problems" != 0 ]; then
    say lock not-taken
    exit 0
  fi
  interrupted=0
  [ -f "$JOURNAL" ] && ! journal_terminal && [ "$(lock_state)" = dead ] && interrupted=1
  if [ "${RECOVER:-0}" = 1 ]; then
    if [ "$interrupted" != 1 ]; then
      say recover nothing-to-recover
      say lock not-taken
      exit 0
    fi
    # Recovery takes over the lock of an interrupted run, and only that.
    if [ -d "$ROT/lock" ]; then
      mv "$ROT/lock" "$ROT/lock.interrupted.$(date -u +%Y%m%dT%H%M%SZ)" || {
        say lock busy
        exit 0
      }
    fi
  elif [ "$interrupted" = 1 ]; then
    say lock not-taken
    exit 0
  fi
  if mkdir "$ROT/lock" 2>/dev/null; then
    printf 'run=%s\nstarted=%s\nby=%s\n' "$RUN_ID" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$RUN_BY" >"$ROT/lock/holder"
    say lock taken
  else
    say lock busy
  fi
}

# Releases the lock only when this run holds it and has not launched.
release() {
  cd "$DEPLOY_DIR" || exit 1
  if [ -f "$ROT/lock/holder" ] && grep -qx "run=$RUN_ID" "$ROT/lock/holder" && [ ! -f "$ROT/lock/pid" ]; then
    rm -f "$ROT/env.new"
    rm -rf "$ROT/lock"
    say lock released
  else
    say lock not-ours
  fi
}

# For an action that lost the answer to launch: did this run's sequence start?
# started, not-started, or unknown. When it had not started yet, a claim on the
# lock (the same mkdir "run" makes first) fences it off for good, and the lock
# is released, so "not-started" stays true.
status() {
  cd "$DEPLOY_DIR" || {
    say status unknown
    exit 0
  }
  if [ -f "$JOURNAL" ] && grep -F "run=$RUN_ID" "$JOURNAL" | grep -q "$(printf '\trun-start\t')"; then
    say status started
  elif ! grep -qx "run=$RUN_ID" "$ROT/lock/holder" 2>/dev/null; then
    say status not-started
  elif mkdir "$ROT/lock/claim" 2>/dev/null; then
    # Launch had moved the last journal aside: put it back.
    if [ ! -s "$JOURNAL" ] && [ -f "$ROT/journal.prev" ]; then mv -f "$ROT/journal.prev" "$JOURNAL"; fi
    rm -f "$ROT/env.new"
    rm -rf "$ROT/lock"
    say status not-started
  else
    say status started
  fi
}

# Proves the revoke will work before anything stops: the user and database
# the running postgres container really has (unless given), then the revoke
# SQL inside a transaction that is rolled back (.rotation/revoke-check.sql,
# staged by the action). Prints db_user, db_name, then db=ok or db_error=...
dbcheck() {
  cd "$DEPLOY_DIR" || exit 1
  env_paths
  user=${POSTGRES_USER:-}
  db=${POSTGRES_DB:-}
  if [ -z "$user" ] || [ -z "$db" ]; then
    # The container's own environment: what compose resolved, ${...} included.
    # shellcheck disable=SC2016
    seen=$(compose exec -T "$POSTGRES_SERVICE" sh -c 'printf "%s\n%s\n" "$POSTGRES_USER" "$POSTGRES_DB"' 2>/dev/null)
    [ -n "$user" ] || user=$(printf '%s\n' "$seen" | sed -n 1p)
    [ -n "$db" ] || db=$(printf '%s\n' "$seen" | sed -n 2p)
    [ -n "$user" ] || user=postgres
    [ -n "$db" ] || db=$user
  fi
  say db_user "$user"
  say db_name "$db"
  out=$(compose exec -T "$POSTGRES_SERVICE" \
    psql -X -q -v ON_ERROR_STOP=1 -U "$user" -d "$db" -f - <"$ROT/revoke-check.sql" 2>&1)
  status=$?
  rm -f "$ROT/revoke-check.sql"
  if [ "$status" = 0 ]; then say db ok; else
    say db_error "exit $status: $(printf '%s' "$out" | tr '\n\t' '  ' | head -c 300)"
  fi
}

launch() {
  cd "$DEPLOY_DIR" || exit 1
  grep -qx "run=$RUN_ID" "$ROT/lock/holder" 2>/dev/null || {
    say launched no-lock
    exit 1
  }
  [ -f "$JOURNAL" ] && mv -f "$JOURNAL" "$ROT/journal.prev"
  : >"$JOURNAL"
  if [ "$DETACH" = systemd-run ] || [ "$DETACH" = systemd-run-user ]; then
    # A unit starts from the manager's environment, not this session's: carry
    # what preflight ran with (PATH, DOCKER_*, COMPOSE_*) through a 0600 file.
    env | grep -E '^(PATH|DOCKER_[A-Z0-9_]*|COMPOSE_[A-Z0-9_]*)=' >"$ROT/run.env"
    user_flag=''
    [ "$DETACH" = systemd-run-user ] && user_flag=--user
    # shellcheck disable=SC2086
    systemd-run $user_flag --unit="jwt-rotation-$RUN_ID" --collect --quiet \
      --property=WorkingDirectory="$DEPLOY_DIR" \
      --property=EnvironmentFile="$DEPLOY_DIR/$ROT/run.env" \
      /bin/sh "$DEPLOY_DIR/$ROT/rotate-host.sh" run "$DEPLOY_DIR/$ROT/params" || {
      say launched failed
      exit 1
    }
  else
    # A new session: no SIGHUP when the SSH connection drops, no terminal.
    setsid /bin/sh "$ROT/rotate-host.sh" run "$ROT/params" </dev/null >>"$ROT/host.log" 2>&1 &
  fi
  say launched "$DETACH"
}

# Prints journal lines as they are appended, until the run has ended.
follow() {
  cd "$DEPLOY_DIR" || exit 1
  seen=${FROM_LINE:-0}
  waited=0
  while :; do
    total=$(wc -l <"$JOURNAL" 2>/dev/null || echo 0)
    if [ "$total" -gt "$seen" ]; then
      tail -n "+$((seen + 1))" "$JOURNAL" | head -n "$((total - seen))"
      seen=$total
    fi
    journal_terminal && [ "$(wc -l <"$JOURNAL")" -le "$seen" ] && exit 0
    pid=$(cat "$ROT/lock/pid" 2>/dev/null || true)
    if [ -n "$pid" ]; then
      if ! holder_alive "$pid" && ! journal_terminal; then
        sleep 0.2
        journal_terminal || {
          echo "follow: the host sequence (pid $pid) ended without a result" >&2
          exit 3
        }
      fi
    else
      waited=$((waited + 1))
      # No pid after 30 s: the sequence never started.
      [ "$waited" -gt 150 ] && ! journal_terminal && {
        echo "follow: the host sequence did not start" >&2
        exit 4
      }
    fi
    sleep 0.2
  done
}

# ---------------------------------------------------------------- restart: targeted
# Resolves the compose file the action staged (.rotation/targets.yml: env_file
# entries stripped) with its marker .env (.rotation/targets.env: markers in
# place of secret values), so the output holds no real secret. Prints
# docker_cli=yes|no, then the resolved configuration.
resolve_config() {
  cd "$DEPLOY_DIR" || exit 1
  if command -v docker >/dev/null 2>&1; then say docker_cli yes; else say docker_cli no; fi
  bound=''
  command -v timeout >/dev/null 2>&1 && bound="timeout -k 5 60"
  # Only what compose needs: a variable exported in this shell would override the markers.
  # shellcheck disable=SC2086
  env -i PATH="$PATH" HOME="${HOME:-/}" DOCKER_HOST="${DOCKER_HOST:-}" $bound $COMPOSE_CMD \
    -f "$ROT/targets.yml" --project-directory "$(dirname "$COMPOSE_FILE")" --env-file "$ROT/targets.env" \
    config 2>"$ROT/targets.err"
  status=$?
  [ "$status" = 0 ] || head -c 300 "$ROT/targets.err" >&2
  rm -f "$ROT/targets.yml" "$ROT/targets.env" "$ROT/targets.err"
  exit "$status"
}

bounded() { # command...: bounded by the step timeout like compose calls
  if command -v timeout >/dev/null 2>&1; then timeout -k 10 "$STEP_TIMEOUT" "$@"; else "$@"; fi
}

# "<service> <container id>" for each service container (one-off containers skipped).
service_containers() {
  ids=$(compose ps -q) || return 1
  [ -n "$ids" ] || return 0
  # shellcheck disable=SC2086
  bounded docker inspect -f '{{index .Config.Labels "com.docker.compose.service"}} {{index .Config.Labels "com.docker.compose.oneoff"}} {{.Id}}' $ids |
    awk '$2 != "True" { print $1, $3 }'
}

container_of() { # service file
  awk -v s="$1" '$1 == s { print $2; exit }' "$2"
}

iso_ms() { # docker's RFC 3339 time → epoch ms (empty when unknown)
  case $1 in '' | 0001-*) return 0 ;; esac
  date -d "$1" +%s%3N 2>/dev/null
}

probe_ok() {
  if [ "$HTTP_CLIENT" = curl ]; then
    case $(curl -s -o /dev/null -w '%{http_code}' -m 1 "$HEALTH_URL" 2>/dev/null) in 2??) return 0 ;; esac
    return 1
  fi
  wget -q -O /dev/null -T 1 "$HEALTH_URL" 2>/dev/null
}

# Probes the API every 0.1 s in the background: journals the first failed
# probe (api down) and the first healthy one after it (api up), then ends.
start_api_watch() {
  (
    deadline=$(($(now_ms) + STEP_TIMEOUT * 4000))
    down=0
    while [ "$(now_ms)" -lt "$deadline" ]; do
      at=$(now_ms)
      if probe_ok; then
        [ "$down" = 1 ] && {
          journal api - up "at=$at"
          exit 0
        }
      elif [ "$down" = 0 ]; then
        down=1
        journal api - down "at=$at"
      fi
      journal_terminal && exit 0
      sleep 0.1
    done
  ) </dev/null >/dev/null 2>&1 &
}

# Before any change: which container runs each service, and (immediate) that
# the database takes commands in its running container.
prepare_targets() {
  service_containers >"$ROT/containers.before" || {
    STEP_DETAIL='could not list the running containers'
    return 1
  }
  PG_CONTAINER=$(container_of "$POSTGRES_SERVICE" "$ROT/containers.before")
  if [ "$MODE" = immediate ]; then
    [ -n "$PG_CONTAINER" ] || {
      STEP_DETAIL="$POSTGRES_SERVICE has no container"
      return 1
    }
    bounded docker exec "$PG_CONTAINER" pg_isready -q -U "$POSTGRES_USER" -d "$POSTGRES_DB" || {
      STEP_DETAIL="$POSTGRES_SERVICE does not accept connections"
      return 1
    }
  fi
  TARGETS=$(present_targets)
  [ -n "$TARGETS" ] || {
    STEP_DETAIL='none of the services that receive a rotated key has a container'
    return 1
  }
  start_api_watch
  STEP_DETAIL="services=$(printf '%s' "${TARGETS% }" | tr ' ' ',')"
}

# The targets that had a container before the run: one never started (an
# inactive profile, a one-shot job) is not started by the rotation either.
present_targets() {
  for svc in $TARGETS; do
    [ -n "$(container_of "$svc" "$ROT/containers.before")" ] && printf '%s ' "$svc"
  done
}

# shellcheck disable=SC2086
stop_targets() {
  compose stop $TARGETS || return 1
  # When each one stopped, from the engine (in the background: the API is down).
  ids=''
  for svc in $TARGETS; do ids="$ids $(container_of "$svc" "$ROT/containers.before")"; done
  [ -n "${ids# }" ] && {
    bounded docker inspect -f '{{index .Config.Labels "com.docker.compose.service"}} {{.State.FinishedAt}}' $ids >"$ROT/stopped.times" 2>/dev/null &
  }
  STEP_DETAIL="services=$(printf '%s' "${TARGETS% }" | tr ' ' ',')"
}

# The revoke through the database's known container: no compose start-up.
revoke_direct() {
  out=$(bounded docker exec -i "$PG_CONTAINER" \
    psql -X -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" -f - <"$ROT/revoke.sql" 2>&1)
  status=$?
  printf '%s\n' "$out" >>"$ROT/host.log"
  rows=$(printf '%s\n' "$out" | sed -n -e 's/^DELETE \([0-9][0-9]*\)$/\1/p' -e 's/^UPDATE \([0-9][0-9]*\)$/\1/p' | tail -n 1)
  STEP_DETAIL="rows=${rows:-unknown}"
  [ "$status" = 0 ]
}

# After the services are back: per recreated service, when it stopped and
# started; a service recreated that was not a target is named. Never fails.
record_services() {
  service_containers >"$ROT/containers.after" 2>/dev/null || return 0
  while read -r svc id; do
    [ "$(container_of "$svc" "$ROT/containers.before")" = "$id" ] && continue
    kind=unexpected
    for t in $TARGETS; do [ "$t" = "$svc" ] && kind=target; done
    stopped=$(iso_ms "$(sed -n "s/^$svc //p" "$ROT/stopped.times" 2>/dev/null | head -n 1)")
    started=$(iso_ms "$(bounded docker inspect -f '{{.State.StartedAt}}' "$id" 2>/dev/null)")
    journal service "$svc" "$kind" "stopped=${stopped:-unknown} started=${started:-unknown}"
  done <"$ROT/containers.after"
  rm -f "$ROT/stopped.times"
  return 0
}

# restart: targeted recreates only the targets (compose still checks their
# dependencies); record_services then names anything else that was recreated.
# shellcheck disable=SC2086
up_step() {
  if [ "${RESTART:-all}" = targeted ]; then compose up -d $TARGETS; else compose up -d; fi
}

# Rollback's first step with restart: targeted: stop the same services.
# shellcheck disable=SC2086
rollback_stop() {
  journal step-start rollback-stop
  if compose stop $TARGETS >>"$ROT/host.log" 2>&1; then journal step-end rollback-stop ok; else
    # Not fatal: restoring .env and up -d still recreate them on the old values.
    journal step-end rollback-stop fail "exit=$?"
  fi
}

# ---------------------------------------------------------------- the run
restore_backup() { # backup path; keeps the target's mode and owner
  install_env "$1"
}

# One probe: one request, no redirect followed (a redirect to a login page is
# no proof of health), at most 5 s and never past the deadline.
probe() { # url deadline_ms -> prints the HTTP code (000: no answer)
  left=$((($2 - $(now_ms)) / 1000))
  [ "$left" -lt 1 ] && left=1
  [ "$left" -gt 5 ] && left=5
  if [ "$HTTP_CLIENT" = curl ]; then
    curl -s -o /dev/null -w '%{http_code}' --max-redirs 0 -m "$left" "$1" 2>/dev/null || true
  elif wget -q -O /dev/null -t 1 --max-redirect=0 -T "$left" "$1" 2>/dev/null; then
    printf 200
  else
    printf 000
  fi
}

# Healthy means 2xx answers for HEALTH_SETTLE seconds in a row: one 2xx from a
# crash-looping app is not health. The journal marks where the streak began
# (the end of the downtime); the streak may finish past the deadline.
health_loop() { # step name
  deadline=$(($(now_ms) + HEALTH_TIMEOUT * 1000))
  settle_ms=$((${HEALTH_SETTLE:-3} * 1000))
  try=0
  since=''
  while :; do
    try=$((try + 1))
    code=$(probe "$HEALTH_URL" "$deadline")
    case $code in
      2??)
        if [ -z "$since" ]; then
          since=$(now_ms)
          journal info "$1" - "healthy from try $try: HTTP $code"
        elif [ $(($(now_ms) - since)) -ge "$settle_ms" ]; then
          journal info "$1" - "stayed healthy for ${HEALTH_SETTLE:-3} s (try $try)"
          return 0
        fi
        ;;
      *)
        [ -n "$since" ] && journal info "$1" - "try $try: HTTP $code after a healthy answer: not settled"
        since=''
        [ $((try % 10)) = 1 ] && journal info "$1" - "try $try: HTTP $code"
        ;;
    esac
    [ -z "$since" ] && [ "$(now_ms)" -ge "$deadline" ] && {
      journal info "$1" - "gave up after $try tries, last HTTP $code"
      return 1
    }
    sleep "${HEALTH_INTERVAL:-0.25}"
  done
}

wait_postgres() {
  deadline=$(($(now_ms) + HEALTH_TIMEOUT * 1000))
  while :; do
    compose exec -T "$POSTGRES_SERVICE" pg_isready -q -U "$POSTGRES_USER" -d "$POSTGRES_DB" && return 0
    [ "$(now_ms)" -ge "$deadline" ] && return 1
    sleep 0.25
  done
}

revoke() {
  out=$(compose exec -T "$POSTGRES_SERVICE" \
    psql -X -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" -f - <"$ROT/revoke.sql" 2>&1)
  status=$?
  printf '%s\n' "$out" >>"$ROT/host.log"
  rows=$(printf '%s\n' "$out" | sed -n -e 's/^DELETE \([0-9][0-9]*\)$/\1/p' -e 's/^UPDATE \([0-9][0-9]*\)$/\1/p' | tail -n 1)
  STEP_DETAIL="rows=${rows:-unknown}"
  [ "$status" = 0 ]
}

do_step() {
  STEP_DETAIL=''
  if [ "${TARGET:-compose}" = swarm ] && swarm_owns_step "$1"; then
    swarm_do_step "$1"
    return
  fi
  case $1 in
    backup)
      [ -n "${ENV_REAL_EXPECTED:-}" ] && [ "$ENV_REAL" != "$ENV_REAL_EXPECTED" ] && {
        STEP_DETAIL="$ENV_FILE now points to $ENV_REAL, not $ENV_REAL_EXPECTED as in preflight"
        return 1
      }
      [ "$(sha256sum <"$ENV_REAL" | cut -d ' ' -f 1)" = "$ENV_SHA256" ] || {
        STEP_DETAIL="$ENV_FILE changed since preflight"
        return 1
      }
      # Beside the target, so restoring is a rename in one directory.
      cp "$ENV_REAL" "$ENV_DIR/.$ENV_BASE.backup-new.$$" && chmod 600 "$ENV_DIR/.$ENV_BASE.backup-new.$$" &&
        cp "$ENV_DIR/.$ENV_BASE.backup-new.$$" "$ENV_DIR/.$ENV_BASE.backup-new2.$$" &&
        { sync "$ENV_DIR/.$ENV_BASE.backup-new.$$" 2>/dev/null || sync; } &&
        mv -f "$ENV_DIR/.$ENV_BASE.backup-new.$$" "$BACKUP_PATH" &&
        mv -f "$ENV_DIR/.$ENV_BASE.backup-new2.$$" "$ENV_REAL.backup" &&
        cmp -s "$ENV_REAL" "$BACKUP_PATH" || return 1
      BACKED_UP=1
      # Keep BACKUP_RETENTION timestamped backups, this run's own always among them.
      list_backups | grep -vxF -- "$BACKUP_PATH" | tail -n "+$BACKUP_RETENTION" | while read -r old; do rm -f -- "$old"; done
      STEP_DETAIL="path=$BACKUP_PATH"
      ;;
    recover-restore)
      from=$(interrupted_backup)
      BACKED_UP=1
      if [ -z "$from" ]; then
        # The interrupted run died before its backup was complete, so before
        # it touched .env: keep .env (an older backup would undo a finished
        # rotation). A copy is what a failed recovery rolls back to.
        cp "$ENV_FILE" "$ROT/env.kept" || return 1
        BACKUP_PATH=$ROT/env.kept
        journal info recover-restore - "kept $ENV_FILE: the interrupted run had made no backup"
        STEP_DETAIL=kept
        return 0
      fi
      # Journaled first, so a recovery that dies here is recovered the same way.
      journal info recover-restore - "path=$from"
      [ -f "$from" ] || {
        STEP_DETAIL="backup $from missing"
        return 1
      }
      BACKUP_PATH=$from
      cmp -s "$BACKUP_PATH" "$ENV_FILE" || restore_backup "$BACKUP_PATH" || return 1
      STEP_DETAIL="path=$BACKUP_PATH"
      ;;
    prepare) prepare_targets ;;
    stop) stop_targets ;;
    down) compose down ;;
    swap)
      [ -s "$ROT/env.new" ] || {
        STEP_DETAIL='staged env missing'
        return 1
      }
      install_env "$ROT/env.new" || return 1
      rm -f "$ROT/env.new"
      SWAPPED=1
      ;;
    up-postgres) compose up -d "$POSTGRES_SERVICE" ;;
    wait-postgres) wait_postgres ;;
    revoke) if [ "${RESTART:-all}" = targeted ]; then revoke_direct; else revoke; fi ;;
    up) up_step ;;
    health) health_loop health ;;
    *)
      STEP_DETAIL="unknown step $1"
      return 1
      ;;
  esac
}

step() { # name
  [ "$TERMINATED" = 1 ] && return 1
  journal step-start "$1"
  do_step "$1" >>"$ROT/host.log" 2>&1
  status=$?
  redact_host_log
  if [ "$status" = 0 ]; then
    journal step-end "$1" ok "$STEP_DETAIL"
    return 0
  fi
  journal step-end "$1" fail "exit=$status${STEP_DETAIL:+ $STEP_DETAIL}"
  return 1
}

# The backup back over the .env when the run may have changed it (journaled
# as rollback-restore); 1 when that failed.
rollback_restore() {
  [ "$SWAPPED" = 1 ] || [ -f "$ROT/env.new" ] || ! cmp -s "$ENV_FILE" "$BACKUP_PATH" || return 0
  journal step-start rollback-restore
  rm -f "$ROT/env.new"
  if restore_backup "$BACKUP_PATH" >>"$ROT/host.log" 2>&1 && cmp -s "$ENV_FILE" "$BACKUP_PATH"; then
    journal step-end rollback-restore ok "path=$BACKUP_PATH"
  else
    journal step-end rollback-restore fail
    return 1
  fi
}

rollback() { # failed step
  if [ "${TARGET:-compose}" = swarm ]; then
    swarm_rollback "$1"
    return
  fi
  journal rollback-start - - "$1"
  [ "${RESTART:-all}" = targeted ] && rollback_stop
  ok=1
  rollback_restore || ok=0
  TERMINATED=0
  for s in up health; do
    journal step-start "rollback-$s"
    STEP_DETAIL=''
    if [ "$s" = up ]; then compose up -d >>"$ROT/host.log" 2>&1; else health_loop rollback-health; fi
    status=$?
    if [ "$status" = 0 ]; then journal step-end "rollback-$s" ok; else
      journal step-end "rollback-$s" fail "exit=$status"
      ok=0
      break
    fi
  done
  [ "$ok" = 1 ]
}

# host.log holds compose's and psql's own output, which can quote a value
# (compose v2: Invalid template: "<value>"). Rewritten in place (the run's
# stdout appends to the same file) with every value of REDACT_KEYS, as the
# .env, the staged file and the backup hold them, replaced by ***.
redact_host_log() {
  [ -n "${REDACT_KEYS:-}" ] && [ -s "$ROT/host.log" ] || return 0
  awk -v keys="$REDACT_KEYS" '
    function add(v) { if (length(v) >= 8) vals[++m] = v }
    BEGIN {
      n = split(keys, k, " ")
      for (f = 1; f < ARGC; f++) {
        while ((getline line < ARGV[f]) > 0) {
          sub(/\r$/, "", line)
          sub(/^export[ \t]+/, "", line)
          for (i = 1; i <= n; i++) {
            if (index(line, k[i] "=") != 1) continue
            v = substr(line, length(k[i]) + 2)
            add(v)
            q = substr(v, 1, 1)
            if ((q == "\"" || q == "\047") && substr(v, length(v), 1) == q) add(substr(v, 2, length(v) - 2))
          }
        }
        close(ARGV[f])
      }
      ARGC = 1
    }
    {
      for (j = 1; j <= m; j++)
        while ((x = index($0, vals[j])) > 0) $0 = substr($0, 1, x - 1) "***" substr($0, x + length(vals[j]))
      print
    }
  ' "$ENV_FILE" "$ROT/env.new" "${BACKUP_PATH:-/dev/null}" <"$ROT/host.log" >"$ROT/host.log.redacted" &&
    cat "$ROT/host.log.redacted" >"$ROT/host.log"
  rm -f "$ROT/host.log.redacted"
}

finish() { # result detail
  redact_host_log
  rm -f "$ROT/env.new" "$ROT/env.kept" "$ENV_DIR/.$ENV_BASE.rotation-new.$$" \
    "$ENV_DIR/.$ENV_BASE.backup-new.$$" "$ENV_DIR/.$ENV_BASE.backup-new2.$$"
  [ "${TARGET:-compose}" = swarm ] && swarm_cleanup
  journal result - "$1" "${2:-}"
  rm -rf "$ROT/lock"
  exit 0
}

run() {
  # shellcheck disable=SC1090
  . "$PARAMS_FILE"
  cd "$DEPLOY_DIR" || exit 1
  # Only the lock's holder runs, and only once: the claim also fences off a
  # run that `status` declared not started.
  if ! grep -qx "run=$RUN_ID" "$ROT/lock/holder" 2>/dev/null || ! mkdir "$ROT/lock/claim" 2>/dev/null; then
    echo "rotate-host.sh run $RUN_ID: the lock is not this run's, or this run was fenced off: not starting" >&2
    exit 1
  fi
  env_paths
  # A backup path from the action names the .env; the backup sits beside its target.
  BACKUP_PATH=$ENV_REAL.backup.${BACKUP_PATH##*.backup.}
  cat /proc/sys/kernel/random/boot_id >"$ROT/lock/boot" 2>/dev/null
  echo $$ >"$ROT/lock/pid"
  TERMINATED=0
  SWAPPED=0
  BACKED_UP=0
  trap '' HUP INT
  trap 'TERMINATED=1; journal info - - "SIGTERM received: rolling back"' TERM
  journal run-start - "$MODE" "pid=$$ run=$RUN_ID"
  failed=''
  for s in $STEPS; do
    step "$s" || {
      failed=$s
      break
    }
  done
  if [ -z "$failed" ]; then
    # After the healthy check, so it is not counted in the downtime.
    [ "${RESTART:-all}" = targeted ] && [ "${TARGET:-compose}" = compose ] && record_services >>"$ROT/host.log" 2>&1
    [ "${TARGET:-compose}" = swarm ] && swarm_record_services >>"$ROT/host.log" 2>&1
    case $MODE in
      recover) finish recovered ;;
      *) finish success ;;
    esac
  fi
  if [ "$BACKED_UP" != 1 ]; then
    # Nothing was changed: the failure came before or at the backup.
    finish aborted "failed at $failed before any change"
  fi
  if rollback "$failed"; then
    case $MODE in
      recover) finish recover-failed "failed at $failed; services restarted on the restored .env" ;;
      *) finish rolled-back "failed at $failed" ;;
    esac
  fi
  case $MODE in
    recover) finish recover-failed "failed at $failed; rollback failed too" ;;
    *) finish rollback-failed "failed at $failed" ;;
  esac
}

# ROTATE_HOST_SOURCED=1: only define the functions (the tests source them).
[ -n "${ROTATE_HOST_SOURCED:-}" ] && return 0 2>/dev/null
command=${1:-}
case $command in
  preflight)
    env_paths
    TMPDIR_PF=$(mktemp -d)
    preflight
    rm -rf "$TMPDIR_PF"
    ;;
  release) release ;;
  status) status ;;
  dbcheck) dbcheck ;;
  swarm-dbcheck) swarm_dbcheck ;;
  resolve) resolve_config ;;
  launch) launch ;;
  follow) follow ;;
  run)
    PARAMS_FILE=${2:?params file}
    run
    ;;
  *)
    echo "usage: rotate-host.sh preflight|release|resolve|launch|follow|run PARAMS" >&2
    exit 2
    ;;
esac
