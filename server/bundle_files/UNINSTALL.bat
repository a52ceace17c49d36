@echo off
rem millwatch exporter @VERSION@: removes what INSTALL.bat installed. Run it as administrator.
rem The configuration and the buffered readings in "%ProgramData%\millwatch-exporter" are kept
rem unless you answer Y (or set MW_PURGE=1).
setlocal EnableExtensions

set "TARGET=%ProgramFiles%\millwatch-exporter"
set "DATA=%ProgramData%\millwatch-exporter"
set "TASK=millwatch-exporter"
set "RULE=millwatch-exporter"

net session >nul 2>&1
if errorlevel 1 goto :not_admin

echo [1/4] Stopping and removing the scheduled task "%TASK%"
schtasks /End /TN "%TASK%" >nul 2>&1
schtasks /Delete /TN "%TASK%" /F >nul 2>&1
rem The task's command loop is gone; end the exporter it started (the venv launcher and its python).
taskkill /F /T /IM millwatch-exporter.exe >nul 2>&1

echo [2/4] Removing the firewall rule "%RULE%"
netsh advfirewall firewall delete rule name="%RULE%" >nul 2>&1

echo [3/4] Configuration and buffered readings in "%DATA%"
if "%MW_PURGE%"=="1" goto :purge
choice /C YN /T 60 /D N /M "      Delete them too"
if errorlevel 2 goto :kept
:purge
if exist "%DATA%" rmdir /S /Q "%DATA%"
echo       deleted
goto :remove_program
:kept
echo       kept (delete the folder by hand when no longer needed)

:remove_program
echo [4/4] Removing "%TARGET%"
rem This script may itself live in that folder: cmd.exe reads a batch file line by line, so the
rem removal and everything after it stand on one line, read before the file is gone.
cd /d "%TEMP%" & (if exist "%TARGET%" rmdir /S /Q "%TARGET%") & echo millwatch exporter removed. & endlocal & exit /b 0

:not_admin
echo UNINSTALL.bat must run as administrator: right-click it and choose "Run as administrator".
endlocal
exit /b 1
