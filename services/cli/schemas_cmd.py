"""placeholder until the events package lands"""
import typer
app = typer.Typer()
