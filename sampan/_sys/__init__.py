"""The only user of ctypes in sampan: thin, typed wrappers around Linux system calls.

Each wrapper raises ``OSError`` with the errno and the call's arguments in the message;
callers that know what the failure means translate it (``errors.from_oserror``).
"""
