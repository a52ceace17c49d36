@echo off
rem Run by the scheduled task "millwatch-exporter" (as SYSTEM, at boot): runs the exporter and starts
rem it again 10 s after it stops for any reason (Task Scheduler's own restart only covers a task that
rem fails to start, not a program that exits). Its log goes to exporter.log next to its configuration,
rem moved to exporter.log.1 once it passes 10 MB.
setlocal EnableExtensions
set "DATA=%ProgramData%\millwatch-exporter"
set "LOG=%DATA%\exporter.log"
cd /d "%DATA%"
:loop
if exist "%LOG%" for %%F in ("%LOG%") do if %%~zF GTR 10000000 move /Y "%LOG%" "%LOG%.1" >nul
"%~dp0venv\Scripts\millwatch-exporter.exe" --config "%DATA%\exporter.yaml" >> "%LOG%" 2>&1
echo %DATE% %TIME% millwatch-exporter stopped with status %ERRORLEVEL%; starting it again in 10 s>> "%LOG%"
"%~dp0venv\Scripts\python.exe" -c "import time; time.sleep(10)"
goto loop
