from derive.app.cli import main_exit

main_exit()
