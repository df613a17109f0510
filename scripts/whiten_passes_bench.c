/* whiten.h's covariance and whitening passes alone, on 9 shapes x float32/float64 x 3 data sets (mean 0.5; a shift
   off by 0.01; mean 1e3 with spread 1e-3): the best time of REPS calls at trial 0 (the first shapes), and every
   output written to OUT, so that two builds' headers can be compared byte for byte. Built as setup.py builds the
   extensions (-O3 -fno-math-errno -ffp-contract=off), against a directory holding whiten.h, norm_simd.h and
   mg_clones.h:

     INC=$(python -c "import sysconfig; print(sysconfig.get_paths()['include'])")
     gcc -O3 -fno-math-errno -ffp-contract=off -fopenmp -I DIR -I $INC scripts/whiten_passes_bench.c -o /tmp/wpb -lm
     /tmp/wpb OUT [REPS]                       # then: cmp OUT_old OUT_new
*/
#include <Python.h>
#include <time.h>
#include <stdio.h>
#include "whiten.h"
static double now(void){struct timespec t; clock_gettime(CLOCK_PROCESS_CPUTIME_ID,&t); return t.tv_sec+1e-9*t.tv_nsec;}
static unsigned long long rng=88172645463325252ULL;
static double rnd(void){rng^=rng<<13;rng^=rng>>7;rng^=rng<<17; return (rng>>11)*(1.0/9007199254740992.0);}
static double gauss(void){double u=rnd()+1e-300,v=rnd(); return sqrt(-2*log(u))*cos(6.283185307179586*v);}
int main(int argc, char** argv){
  /* shapes: N C S g */
  Py_ssize_t shapes[][4]={{16,32,64,16},{32,64,256,16},{3,37,49,16},{7,13,17,4},{2,20,13,20},{5,6,1,1},{4,35,7,16},{6,32,15,16},{2,5,70,3}};
  FILE* out = argc>1 ? fopen(argv[1],"wb") : NULL;
  int reps = argc>2 ? atoi(argv[2]) : 200;
  for (int si=0; si<9; si++){
    Py_ssize_t N=shapes[si][0],C=shapes[si][1],S=shapes[si][2],g=shapes[si][3],G=(C+g-1)/g;
    for (int dt=0; dt<2; dt++){
    for (int trial=0; trial<3; trial++){
      float* x=malloc(N*C*S*4); double* xd=malloc(N*C*S*8);
      double* mix=malloc(C*C*8);
      for(Py_ssize_t i=0;i<C*C;i++) mix[i]=gauss()+(i%(C+1)==0?2:0);
      double* z=malloc(N*C*S*8); for(Py_ssize_t i=0;i<N*C*S;i++) z[i]=gauss();
      double scale = trial==2 ? 1e-3 : 1.0, off = trial==2 ? 1e3 : 0.5;
      for(Py_ssize_t n=0;n<N;n++) for(Py_ssize_t c=0;c<C;c++) for(Py_ssize_t s=0;s<S;s++){double t=0; for(Py_ssize_t e=0;e<C;e++) t+=mix[c*C+e]*z[(n*C+e)*S+s]; xd[(n*C+c)*S+s]=off+scale*t; x[(n*C+c)*S+s]=(float)(off+scale*t);}
      float* sh=malloc(C*4); double* shd=malloc(C*8);
      for(Py_ssize_t c=0;c<C;c++){double m=0; for(Py_ssize_t n=0;n<N;n++) for(Py_ssize_t s=0;s<S;s++) m+=xd[(n*C+c)*S+s]; m/=N*S; sh[c]=(float)m; shd[c]=m + (trial==1? 0.01:0);}
      double* cov=calloc(G*g*g,8);
      float* M=malloc(G*g*g*4); double* Md=malloc(G*g*g*8); float* b=malloc(C*4); double* bd=malloc(C*8);
      for(Py_ssize_t i=0;i<G*g*g;i++){Md[i]=gauss()*0.3; M[i]=(float)Md[i];}
      for(Py_ssize_t c=0;c<C;c++){bd[c]=gauss(); b[c]=(float)bd[c];}
      float* y=malloc(N*C*S*4); double* yd=malloc(N*C*S*8);
      double t0,tc=1e9,tw=1e9;
      for(int r=0;r<(trial==0?reps:1);r++){
        t0=now(); if(dt==0) mg_group_cov_float(cov,x,sh,N,C,S,g,0,G); else mg_group_cov_double(cov,xd,shd,N,C,S,g,0,G); t0=now()-t0; if(t0<tc)tc=t0;
        t0=now(); if(dt==0) mg_group_whiten_float(y,x,sh,M,b,N,C,S,g,0,N*G); else mg_group_whiten_double(yd,xd,shd,Md,bd,N,C,S,g,0,N*G); t0=now()-t0; if(t0<tw)tw=t0;
      }
      if(trial==0 && (dt==0 || si<2)) printf("%s N%ld C%ld S%ld g%ld: cov %.2f us whiten %.2f us\n", dt?"f64":"f32", (long)N,(long)C,(long)S,(long)g,tc*1e6,tw*1e6);
      if(out){fwrite(cov,8,G*g*g,out); if(dt==0) fwrite(y,4,N*C*S,out); else fwrite(yd,8,N*C*S,out);}
      free(x);free(xd);free(mix);free(z);free(sh);free(shd);free(cov);free(M);free(Md);free(b);free(bd);free(y);free(yd);
    }}
  }
  if(out) fclose(out);
  return 0;
}
