from srgrad.cli import app

app(prog_name="srgrad")
