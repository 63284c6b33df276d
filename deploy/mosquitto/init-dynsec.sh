#!/bin/sh
# Give Mosquitto's dynamic-security plugin its first two accounts: the broker admin and the
# Varco gateway. Devices are added later by the gateway itself (POST /devices).
#
#   init-dynsec.sh file      write the plugin's JSON with the admin account (before the broker)
#   init-dynsec.sh gateway   create the varco-gateway role and the gateway's account (broker up)
#
# Both steps are idempotent, so they can run on every start. Environment:
#   DYNSEC_FILE             the plugin's JSON (default /mosquitto/config/dynamic-security.json)
#   DYNSEC_FILE_OWNER       chown the new file to this user (the one mosquitto runs as), if set
#   DYNSEC_ADMIN_USERNAME   the broker admin (default admin)
#   DYNSEC_ADMIN_PASSWORD   its password (required)
#   VARCO_MQTT_HOST/PORT    where the broker listens, for the gateway step (127.0.0.1:1883)
#   VARCO_MQTT_USERNAME     the gateway's account (default varco-gateway)
#   VARCO_MQTT_PASSWORD     its password (required for the gateway step)
set -euf  # -f: the ACL topics below hold no globs, and must not expand

DYNSEC_FILE=${DYNSEC_FILE:-/mosquitto/config/dynamic-security.json}
DYNSEC_ADMIN_USERNAME=${DYNSEC_ADMIN_USERNAME:-admin}
VARCO_MQTT_HOST=${VARCO_MQTT_HOST:-127.0.0.1}
VARCO_MQTT_PORT=${VARCO_MQTT_PORT:-1883}
VARCO_MQTT_USERNAME=${VARCO_MQTT_USERNAME:-varco-gateway}
ROLE=varco-gateway

init_file() {
    if [ -s "$DYNSEC_FILE" ]; then
        echo "init-dynsec: $DYNSEC_FILE exists; left as it is"
        return
    fi
    mosquitto_ctrl dynsec init "$DYNSEC_FILE" "$DYNSEC_ADMIN_USERNAME" \
        "${DYNSEC_ADMIN_PASSWORD:?set DYNSEC_ADMIN_PASSWORD}" >/dev/null
    if [ -n "${DYNSEC_FILE_OWNER:-}" ]; then
        chown "$DYNSEC_FILE_OWNER" "$DYNSEC_FILE"
    fi
    chmod 600 "$DYNSEC_FILE"
    echo "init-dynsec: wrote $DYNSEC_FILE with the admin account $DYNSEC_ADMIN_USERNAME"
}

# Run one dynsec command as the admin; its output is left in $answer. mosquitto_ctrl 2.0 exits 0
# even when the broker refuses a command, so the answer is read instead; "$1" is an error that
# counts as done (or "").
ctrl() {
    tolerated=$1
    shift
    if ! answer=$(mosquitto_ctrl -h "$VARCO_MQTT_HOST" -p "$VARCO_MQTT_PORT" \
        -u "$DYNSEC_ADMIN_USERNAME" -P "$DYNSEC_ADMIN_PASSWORD" dynsec "$@" 2>&1); then
        printf '%s\n' "$answer" >&2
        return 1
    fi
    case $answer in
        *[Ee]rror*)
            if [ -n "$tolerated" ]; then
                case $answer in *"$tolerated"*) return 0 ;; esac
            fi
            printf 'init-dynsec: %s: %s\n' "$1" "$answer" >&2
            return 1
            ;;
    esac
}

init_gateway() {
    : "${DYNSEC_ADMIN_PASSWORD:?set DYNSEC_ADMIN_PASSWORD}"
    : "${VARCO_MQTT_PASSWORD:?set VARCO_MQTT_PASSWORD}"
    tries=0
    until ctrl "" getDefaultACLAccess 2>/dev/null; do
        tries=$((tries + 1))
        case $answer in
            # A wrong admin password will not get better by waiting.
            *"Not authorized"*) tries=30 ;;
        esac
        if [ "$tries" -ge 30 ]; then
            printf 'init-dynsec: cannot administer the broker at %s:%s: %s\n' \
                "$VARCO_MQTT_HOST" "$VARCO_MQTT_PORT" "$answer" >&2
            case $answer in
                *"Not authorized"*)
                    printf '%s\n' "init-dynsec: either DYNSEC_ADMIN_PASSWORD is not the admin's," \
                        "or the broker could not read $DYNSEC_FILE (its log then says" \
                        "'File is not readable'): the file must belong to the user mosquitto" \
                        "runs as (DYNSEC_FILE_OWNER), in a folder that user can enter." >&2
                    ;;
            esac
            return 1
        fi
        sleep 1
    done
    # What no role allows is denied: a device reaches only what its own role grants.
    ctrl "" setDefaultACLAccess publishClientSend deny
    ctrl "" setDefaultACLAccess subscribe deny

    ctrl "already exists" createRole "$ROLE"
    # The wire contract (varco/protocol/topics.py): the gateway reads every device channel,
    # also through shared subscriptions, and writes the four gateway-to-edge channels.
    for acl in \
        "publishClientSend \$CONTROL/dynamic-security/v1" \
        "subscribePattern \$CONTROL/dynamic-security/v1/response" \
        "publishClientReceive \$CONTROL/dynamic-security/v1/response" \
        "subscribePattern varco/v1/+/+/+" \
        "subscribePattern \$share/+/varco/v1/+/+/+" \
        "publishClientReceive varco/v1/+/+/+" \
        "publishClientSend varco/v1/+/+/decision" \
        "publishClientSend varco/v1/+/+/allowlist" \
        "publishClientSend varco/v1/+/+/config" \
        "publishClientSend varco/v1/+/+/command" \
        "publishClientSend varco/v1/+/+/receipt"; do
        # shellcheck disable=SC2086 # two words on purpose: the ACL type and its topic
        ctrl "already exists" addRoleACL "$ROLE" $acl allow
    done

    if ctrl "" getClient "$VARCO_MQTT_USERNAME" 2>/dev/null; then
        # The environment is the truth: a changed password takes effect on the next run.
        ctrl "" setClientPassword "$VARCO_MQTT_USERNAME" "$VARCO_MQTT_PASSWORD"
    else
        ctrl "" createClient "$VARCO_MQTT_USERNAME" -p "$VARCO_MQTT_PASSWORD"
    fi
    ctrl "" getClient "$VARCO_MQTT_USERNAME"
    case $answer in
        # mosquitto 2.0 answers "Internal error" to adding a role the client already has.
        *" $ROLE (priority"*) ;;
        *) ctrl "" addClientRole "$VARCO_MQTT_USERNAME" "$ROLE" ;;
    esac
    echo "init-dynsec: $VARCO_MQTT_USERNAME holds the $ROLE role"
}

case ${1:-} in
    file) init_file ;;
    gateway) init_gateway ;;
    *)
        echo "usage: $0 file|gateway" >&2
        exit 2
        ;;
esac
