#!/bin/sh
# One-shot: the namespace, the project's search attributes, and the event log migration with each database
# role's grants. Safe to re-run.
set -eu
ns="${TEMPORAL_NAMESPACE:-default}"
until temporal operator cluster health --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1; do
  echo "waiting for Temporal at $TEMPORAL_ADDRESS"; sleep 2
done
temporal operator namespace describe --namespace "$ns" --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1 || \
  temporal operator namespace create --namespace "$ns" --retention 30d --address "$TEMPORAL_ADDRESS"
existing=$(temporal operator search-attribute list --namespace "$ns" --address "$TEMPORAL_ADDRESS")
for attribute in ComplaintStatus=Keyword ComplaintChannel=Keyword ComplaintSeverity=Keyword \
                 ComplaintVerdict=Keyword ComplaintRootCause=Keyword CustomerId=Keyword Jurisdiction=Keyword \
                 SlaDueAt=Datetime SlaBreached=Bool AwaitingAgent=Bool; do
  name="${attribute%%=*}"
  type="${attribute#*=}"
  if echo "$existing" | grep -qw "$name"; then
    echo "search attribute $name already registered"
  else
    temporal operator search-attribute create --namespace "$ns" --name "$name" --type "$type" \
      --address "$TEMPORAL_ADDRESS"
  fi
done
# The event log's migrations as the schema owner, and each role's grants (app, sealer, eraser).
complaints db migrate
echo "setup complete"
