# shellcheck shell=sh
# Target swarm (docs/ENGINES.md): the host steps of a stack deployed with
# `docker stack deploy` on a Swarm manager. Only function definitions: the
# action sends this part ahead of rotate-host.sh, whose preflight, do_step and
# rollback call into it when TARGET=swarm. Lock, backup, swap and health are
# rotate-host.sh's own.
#
# Values reach `docker stack deploy` through its environment only: the action
# stages .rotation/stack.env.new and .rotation/stack.env.old (0600, `export
# NAME='value'` lines for the variables the stack file uses, rendered from the
# new and the pre-rotation .env), which a subshell sources right before it
# execs the CLI. No value is ever an argument.

# The stack's name of a service of the stack file.
swarm_name() { printf '%s_%s' "$STACK" "$1"; }

# Every service of the deployed stack, by its stack-file name.
swarm_services() {
  bounded docker stack services --format '{{.Name}}' "$STACK" </dev/null 2>/dev/null | sed -n "s/^${STACK}_//p"
}

# The running container of a service's task on this node (empty: none here).
swarm_task_container() { # service
  bounded docker ps -q --filter "label=com.docker.swarm.service.name=$(swarm_name "$1")" \
    --filter status=running </dev/null | head -n 1
}

# What decides whether a service rolls (its task template: image, env,
# command, mounts...), hashed: the template holds the values.
swarm_template_hash() { # service
  bounded docker service inspect -f '{{json .Spec.TaskTemplate}}' "$(swarm_name "$1")" </dev/null 2>/dev/null |
    sha256sum | cut -c 1-64
}

swarm_update_status() { # service → "<state> <started at>", empty while none
  bounded docker service inspect -f '{{if .UpdateStatus}}{{.UpdateStatus.State}} {{.UpdateStatus.StartedAt}}{{end}}' \
    "$(swarm_name "$1")" </dev/null 2>/dev/null
}

# Preflight facts: the docker CLI, whether this node manages a Swarm, and the
# services the stack runs. Returns 1 when the rotation cannot go on.
swarm_preflight() {
  if ! command -v docker >/dev/null 2>&1; then
    say docker_cli none
    return 1
  fi
  say docker_cli "$(docker version --format '{{.Client.Version}}' 2>/dev/null | head -n 1)"
  node=$(bounded docker info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}' 2>"$TMPDIR_PF/info.err")
  status=$?
  if [ "$status" != 0 ]; then
    say swarm_error "$(head -c 300 "$TMPDIR_PF/info.err" | tr '\n\t' '  ')"
    return 1
  fi
  say swarm_node "$node"
  [ "$node" = 'active true' ] || return 1
  say stacks "$(bounded docker stack ls --format '{{.Name}}' 2>/dev/null | tr '\n' ' ')"
  say stack_services "$(swarm_services | tr '\n' ' ')"
}

# Like dbcheck, through `docker exec` into the database task's container.
swarm_dbcheck() {
  cd "$DEPLOY_DIR" || exit 1
  cid=$(swarm_task_container "$POSTGRES_SERVICE")
  if [ -z "$cid" ]; then
    rm -f "$ROT/revoke-check.sql"
    say db_error "no running task of $(swarm_name "$POSTGRES_SERVICE") on this node (the revoke runs with docker exec on the manager the action connects to)"
    return 0
  fi
  user=${POSTGRES_USER:-}
  db=${POSTGRES_DB:-}
  if [ -z "$user" ] || [ -z "$db" ]; then
    # shellcheck disable=SC2016
    seen=$(bounded docker exec "$cid" sh -c 'printf "%s\n%s\n" "$POSTGRES_USER" "$POSTGRES_DB"' 2>/dev/null)
    [ -n "$user" ] || user=$(printf '%s\n' "$seen" | sed -n 1p)
    [ -n "$db" ] || db=$(printf '%s\n' "$seen" | sed -n 2p)
    [ -n "$user" ] || user=postgres
    [ -n "$db" ] || db=$user
  fi
  say db_user "$user"
  say db_name "$db"
  out=$(bounded docker exec -i "$cid" psql -X -q -v ON_ERROR_STOP=1 -U "$user" -d "$db" -f - <"$ROT/revoke-check.sql" 2>&1)
  status=$?
  rm -f "$ROT/revoke-check.sql"
  if [ "$status" = 0 ]; then say db ok; else
    say db_error "exit $status: $(printf '%s' "$out" | tr '\n\t' '  ' | head -c 300)"
  fi
}

# Each stack service with its template hash, its running task's container on
# this node (- when none) and its last update's start, before a deploy.
swarm_record() { # file
  : >"$1" || return 1
  for svc in $(swarm_services); do
    printf '%s %s %s %s\n' "$svc" "$(swarm_template_hash "$svc")" "$(swarm_task_container "$svc" | grep . || echo -)" \
      "$(swarm_update_status "$svc" | cut -d ' ' -f 2-)" >>"$1"
  done
  [ -s "$1" ]
}

swarm_prepare() {
  swarm_record "$ROT/swarm.before" || {
    STEP_DETAIL="stack $STACK has no service"
    return 1
  }
  if [ "$MODE" = immediate ]; then
    PG_CONTAINER=$(swarm_task_container "$POSTGRES_SERVICE")
    [ -n "$PG_CONTAINER" ] || {
      STEP_DETAIL="$(swarm_name "$POSTGRES_SERVICE") has no running task on this node"
      return 1
    }
    bounded docker exec "$PG_CONTAINER" pg_isready -q -U "$POSTGRES_USER" -d "$POSTGRES_DB" || {
      STEP_DETAIL="$POSTGRES_SERVICE does not accept connections"
      return 1
    }
  fi
  start_api_watch
  STEP_DETAIL="stack=$STACK services=$(printf '%s' "${TARGETS% }" | tr ' ' ',')"
}

# `docker stack deploy` of the stack file with the variables of a staged
# stack env file in its environment. --resolve-image never: no registry is
# asked, so an unchanged image stays as deployed (digest included).
swarm_deploy() { # stack env file
  [ -s "$1" ] || {
    STEP_DETAIL="$1 missing"
    return 1
  }
  (
    # Arguments first: the .env may define COMPOSE_FILE, STACK and the like.
    set -- "$1" "$COMPOSE_FILE" "$STACK" "$STEP_TIMEOUT"
    set -a
    # shellcheck disable=SC1090
    . "./$1"
    set +a
    if command -v timeout >/dev/null 2>&1; then
      exec timeout -k 10 "$4" docker stack deploy --resolve-image never -c "$2" "$3"
    fi
    exec docker stack deploy --resolve-image never -c "$2" "$3"
  )
}

# Waits until every service whose task template the deploy changed has
# finished its rolling update (update_config decides how: stop-first or
# start-first, monitor, failure_action). A paused or rolled-back update fails.
# Journals each changed service (target, or unexpected: the stack file
# differs from what ran), when told to.
swarm_converge() { # before-file journal(yes|no)
  deadline=$(($(now_ms) + STEP_TIMEOUT * 1000))
  changed=''
  [ "$2" = yes ] && : >"$ROT/swarm.rolled"
  while read -r svc hash before update_at; do
    [ "$(swarm_template_hash "$svc")" = "$hash" ] && continue
    changed="$changed $svc"
    while :; do
      status=$(swarm_update_status "$svc")
      state=${status%% *}
      if [ -n "$status" ] && [ "${status#* }" != "$update_at" ]; then
        case $state in
          completed) break ;;
          paused | rollback_*)
            STEP_DETAIL="$(swarm_name "$svc"): update $state: $(bounded docker service inspect -f '{{.UpdateStatus.Message}}' "$(swarm_name "$svc")" 2>/dev/null | head -c 200)"
            return 1
            ;;
        esac
      fi
      [ "$(now_ms)" -ge "$deadline" ] && {
        STEP_DETAIL="$(swarm_name "$svc"): update not completed within $STEP_TIMEOUT s (${state:-not started})"
        return 1
      }
      sleep 0.2
    done
    [ "$2" = yes ] && printf '%s %s %s\n' "$svc" "$before" "$(swarm_task_container "$svc" | grep . || echo -)" >>"$ROT/swarm.rolled"
  done <"$1"
  STEP_DETAIL="updated=$(printf '%s' "${changed# }" | tr ' ' ',')"
}

# After the healthy check (not counted in the downtime): per rolled service,
# when its old task's container stopped and its new one started (start-first:
# the new one first; the old one may still be in its stop grace period when
# the update completes, so it is awaited, 15 s at most). Never fails.
swarm_record_services() {
  [ -f "$ROT/swarm.rolled" ] || return 0
  while read -r svc before after; do
    kind=unexpected
    for t in $TARGETS; do [ "$t" = "$svc" ] && kind=target; done
    stopped=''
    if [ "$before" != - ]; then
      wait_until=$(($(now_ms) + 15000))
      while [ "$(bounded docker inspect -f '{{.State.Running}}' "$before" </dev/null 2>/dev/null)" = true ] &&
        [ "$(now_ms)" -lt "$wait_until" ]; do sleep 0.2; done
      stopped=$(iso_ms "$(bounded docker inspect -f '{{.State.FinishedAt}}' "$before" </dev/null 2>/dev/null)")
    fi
    started=''
    [ "$after" != - ] && started=$(iso_ms "$(bounded docker inspect -f '{{.State.StartedAt}}' "$after" </dev/null 2>/dev/null)")
    journal service "$svc" "$kind" "stopped=${stopped:-unknown} started=${started:-unknown}"
  done <"$ROT/swarm.rolled"
  return 0
}

swarm_revoke() {
  PG_CONTAINER=$(swarm_task_container "$POSTGRES_SERVICE")
  [ -n "$PG_CONTAINER" ] || {
    STEP_DETAIL="$(swarm_name "$POSTGRES_SERVICE") has no running task on this node"
    return 1
  }
  revoke_direct
}

# The steps only target swarm has; 1 (not handled) for the shared ones.
swarm_do_step() { # step
  case $1 in
    swarm-prepare) swarm_prepare ;;
    deploy) swarm_deploy "$ROT/stack.env.new" ;;
    converge) swarm_converge "$ROT/swarm.before" yes ;;
    revoke) swarm_revoke ;;
    *) return 127 ;;
  esac
}

swarm_owns_step() { # step
  case $1 in swarm-prepare | deploy | converge | revoke) return 0 ;; esac
  return 1
}

# Rollback: the backup back in place, the stack redeployed with the
# pre-rotation values, its update awaited, health.
swarm_rollback() { # failed step
  journal rollback-start - - "$1"
  ok=1
  rollback_restore || ok=0
  # shellcheck disable=SC2034 # read by step() in rotate-host.sh
  TERMINATED=0
  swarm_record "$ROT/swarm.rollback" >>"$ROT/host.log" 2>&1
  for s in deploy converge health; do
    journal step-start "rollback-$s"
    STEP_DETAIL=''
    case $s in
      deploy) swarm_deploy "$ROT/stack.env.old" >>"$ROT/host.log" 2>&1 ;;
      converge) swarm_converge "$ROT/swarm.rollback" no >>"$ROT/host.log" 2>&1 ;;
      health) health_loop rollback-health ;;
    esac
    status=$?
    if [ "$status" = 0 ]; then journal step-end "rollback-$s" ok "$STEP_DETAIL"; else
      journal step-end "rollback-$s" fail "exit=$status${STEP_DETAIL:+ $STEP_DETAIL}"
      ok=0
      break
    fi
  done
  [ "$ok" = 1 ]
}

# The staged stack env files hold values: gone when the run ends.
swarm_cleanup() {
  rm -f "$ROT/stack.env.new" "$ROT/stack.env.old" "$ROT/swarm.before" "$ROT/swarm.rollback" "$ROT/swarm.rolled"
}
