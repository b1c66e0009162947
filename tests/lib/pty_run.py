#!/usr/bin/env python3
"""tests/lib/pty_run.py - run a command on a fresh pseudo-terminal and report
what a user at that terminal would see.

usage: pty_run.py [--send BYTES] [--signal SIG] [--after SECONDS] -- CMD...

Starts CMD with the pty's slave as stdin, stdout and stderr (and as its
controlling terminal), waits --after seconds (default 1), records whether the
terminal was in raw mode (no ICANON, no ECHO, no ISIG) at that moment, writes
--send (Python escapes: '\\x03' is Ctrl-C) to the master, waits again, sends
--signal (TERM, HUP, INT...) to CMD if given, then waits at most 15 s for it
to exit.  Prints, one per line:
    raw_inside=0|1  still_running_after_send=0|1  rc=N  restored=0|1
and then the output CMD wrote to the terminal after "output:".
"restored" means ICANON, ECHO and ISIG are back on after CMD exited.
"""
import os, pty, select, signal, sys, termios, time

def main():
    args = sys.argv[1:]
    send, sig, after = None, None, 1.0
    while args and args[0] != '--':
        if args[0] == '--send':
            send = args[1].encode().decode('unicode_escape').encode('latin-1'); args = args[2:]
        elif args[0] == '--signal':
            sig = getattr(signal, 'SIG' + args[1]); args = args[2:]
        elif args[0] == '--after':
            after = float(args[1]); args = args[2:]
        else:
            sys.exit('pty_run.py: unknown option ' + args[0])
    cmd = args[1:]
    master, slave = pty.openpty()
    pid = os.fork()
    if pid == 0:
        os.setsid()
        os.close(master)
        import fcntl
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
        for fd in (0, 1, 2):
            os.dup2(slave, fd)
        os.execvp(cmd[0], cmd)
    out = bytearray()

    def pump(seconds):
        end = time.time() + seconds
        while time.time() < end:
            r, _, _ = select.select([master], [], [], max(0, end - time.time()))
            if not r:
                return
            try:
                data = os.read(master, 65536)
            except OSError:
                return
            if not data:
                return
            out.extend(data)

    def flags_on():
        a = termios.tcgetattr(slave)
        return (a[3] & termios.ICANON) != 0, (a[3] & termios.ECHO) != 0, (a[3] & termios.ISIG) != 0

    pump(after)
    raw_inside = not any(flags_on())
    still = None
    if send is not None:
        os.write(master, send)
        pump(0.5)
        still = os.waitpid(pid, os.WNOHANG) == (0, 0)
    if sig is not None and os.waitpid(pid, os.WNOHANG) == (0, 0):
        os.kill(pid, sig)
    rc = None
    end = time.time() + 15
    while time.time() < end:
        p, st = os.waitpid(pid, os.WNOHANG)
        if p:
            rc = os.waitstatus_to_exitcode(st)
            break
        pump(0.05)
    if rc is None:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        rc = 'timeout'
    pump(0.2)
    restored = all(flags_on())
    print('raw_inside=%d' % raw_inside)
    if still is not None:
        print('still_running_after_send=%d' % still)
    print('rc=%s' % rc)
    print('restored=%d' % restored)
    print('output:')
    sys.stdout.write(out.decode('utf-8', 'replace'))

main()
