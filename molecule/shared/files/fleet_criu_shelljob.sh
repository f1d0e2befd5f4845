#!/bin/sh
# fleet-criu shell job: counts on its terminal and in a file. Started under script(1)
# so that fd 0/1/2 are a pty, like a job in an interactive shell (the seed's case).
mkdir -p /run/fleet-criu-shelljob
i=0
while :; do
  i=$((i + 1))
  echo "$i" > /run/fleet-criu-shelljob/counter.tmp
  mv /run/fleet-criu-shelljob/counter.tmp /run/fleet-criu-shelljob/counter
  echo "tick $i"
  sleep 0.2
done
