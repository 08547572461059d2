#!/usr/bin/env bash
# SFTP mode (transport = sftp) of ssh_reconnect.sh: a dropped SSH connection
# mid-run (the per-connection sshd and its internal-sftp killed mid-file) is
# retried with backoff and the run resumes; no file is created twice, and
# the wire bytes stay below everything plus two files.
SSH_RECONNECT_MODE=sftp exec bash "$(dirname "$0")/ssh_reconnect.sh"
