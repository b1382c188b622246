from ascl_data.cli import run

run()
