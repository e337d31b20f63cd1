"""Local developer tools: the Lambda runtime emulator and ``lambda invoke``, the layer builder,
``attach`` (py-spy, out of process) and the demo. They run the agent and call the server; nothing
in the agent, the analyzer or the server imports them.
"""
